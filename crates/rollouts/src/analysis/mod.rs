//! Analysis: `AnalysisTemplate`s and `ClusterAnalysisTemplate`s turned into `AnalysisRun`s,
//! their measurements taken from Prometheus, and their conditions evaluated.
