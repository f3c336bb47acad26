"""The domain, one module per verb: training, search, prediction (and its model cache),
evaluation, deployment, datasets, importance; over the store and the algorithms."""
