"""The estimator families that the compiled paths know by their arithmetic: the Python
row predictors (``predictors.py``) and the native format (``native_format.py``)."""

from __future__ import annotations

from sklearn import ensemble, linear_model, tree

LINEAR_CLASSIFIERS = (
    linear_model.LogisticRegression,
    linear_model.SGDClassifier,
    linear_model.RidgeClassifier,
    linear_model.RidgeClassifierCV,
)
LINEAR_REGRESSORS = (
    linear_model.LinearRegression,
    linear_model.Ridge,
    linear_model.RidgeCV,
    linear_model.Lasso,
    linear_model.LassoCV,
    linear_model.ElasticNet,
    linear_model.ElasticNetCV,
    linear_model.SGDRegressor,
)
SINGLE_TREES = (
    tree.DecisionTreeClassifier,
    tree.DecisionTreeRegressor,
    tree.ExtraTreeClassifier,
    tree.ExtraTreeRegressor,
)
FORESTS = (
    ensemble.RandomForestClassifier,
    ensemble.RandomForestRegressor,
    ensemble.ExtraTreesClassifier,
    ensemble.ExtraTreesRegressor,
)
BOOSTING = (ensemble.GradientBoostingClassifier, ensemble.GradientBoostingRegressor)
ADA_BOOST = (ensemble.AdaBoostClassifier, ensemble.AdaBoostRegressor)
BAGGING = (ensemble.BaggingClassifier, ensemble.BaggingRegressor)
HIST_BOOSTING = (ensemble.HistGradientBoostingClassifier, ensemble.HistGradientBoostingRegressor)
