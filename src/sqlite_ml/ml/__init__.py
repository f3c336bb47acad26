"""Machine learning without SQL: the algorithm catalogue, feature encoding, pipelines,
compiled predictors, probabilities, persistence (the skops allow-list) and metrics."""
