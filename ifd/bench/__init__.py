"""`ifd bench`: our detector against continual-learning baselines on one stream, same backbone and budget.

Strategies (CONTRACT.md): our Latent-space Incremental Detector and its ablations (SUR-LID, CVPR 2025),
our own fine-tuning lower bound, joint retraining on every task seen so far (the upper bound), and the
real strategies of Avalanche (Lomonaco et al., "Avalanche: an End-to-End Library for Continual
Learning", CVPR-W 2021): Naive, Replay, EWC (Kirkpatrick et al., PNAS 2017), LwF (Li & Hoiem, TPAMI
2017), DER++ (Buzzega et al., NeurIPS 2020), GDumb (Prabhu et al., ECCV 2020), A-GEM (Chaudhry et al.,
ICLR 2019). Every strategy fills the same `ifd.eval.matrix.ResultMatrix`, so one report serves all.

Modules: `strategies` (the registry), `lid_runner` (our loop), `avalanche_adapter` (the only importer
of avalanche), `lazy_split` (a task split read on demand), `tensors` (the backbone + linear model), `worker` (one
(strategy, seed) in its own process), `runner` (the campaign), `aggregate` / `report_md` / `schema`
(results.json, results.md, plots), `cost` (time per increment), `throughput` (images/s).
"""
