"""`ifd tune`: an Optuna study over the detector's settings (Akiba et al., "Optuna: A Next-generation
Hyperparameter Optimization Framework", KDD 2019), every trial logged to MLflow.

Multi-objective mode maximises AA and minimises AF (Pareto front, TPE sampler); single-objective mode
maximises a scalarised retention score AA - alpha * AF and prunes after any task (Optuna 5 refuses
intermediate reports in multi-objective studies). The study lives in an RDB (SQLite in the workspace by
default, any SQLAlchemy URL to share it between workers). This package is the only importer of optuna.

Every trial is measured on the val matrix; the test split is read once, for the best trial's final
report (`final_report`). Modules: `space` (the search space, data in space.yaml), `study` (the study and
its objective), `final_report` (the one test read), `pareto` (front and plot), `params_io` (best settings
into params.yaml, only when asked), `strategies` (the same small search on val for every benchmark
strategy, data in strategy_space.yaml).
"""
