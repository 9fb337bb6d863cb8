"""``musc-ecd sweep SWEEP.yaml``: expand a base config along axes into runs, and run them.

A sweep file::

    base: ../../configs/musc.yaml      # the config every run starts from (relative to THIS file)
    overrides: [data.limit=64]         # applied to every run (a dotlist, or a mapping key: value)
    grid:                              # cartesian product of these axes
      train.loss: [[sigmoid], [hinge, sft]]   # a list-valued key: a list of lists
      train.weights: [none, kl]
    zip:                               # each group: keys that vary together (equal-length lists)
      - name: [self, teacher]          #   optional human names for the group's variants
        method: [musc_coarse, ecd]
        model.teacher: [null, Qwen/Qwen2.5-7B-Instruct]
    runs_dir: runs/teacher_vs_self     # default runs/<file stem> (runs/<folder> for a file named sweep.yaml)
    share_dir: runs/teacher_vs_self/_shared   # default RUNS_DIR/_shared; null = nothing shared
    executor: local                    # local | slurm
    slurm: {partition: gpu, timeout_min: 240, gpus_per_node: 1, cpus_per_task: 8, mem_gb: 64}

Paths: ``base`` is relative to the sweep file (an experiment folder is self-contained); ``runs_dir``,
``share_dir`` and every path inside the configs are relative to the working directory, as ``run_dir`` is.

Runs are the product of the grid and of every zip group, in file order. A run's directory is
RUNS_DIR/NAME, NAME built from what varies: ``key-value`` per axis key (the key's last part, or the whole
key when two axes end alike), a zip group's ``name`` instead of its keys, joined by ``_``; e.g.
``loss-hinge_weights-kl_teacher``. Characters other than letters, digits and ``.+=_-`` become ``-``.
Names that collide, or are longer than 80 characters, get a hash of the run's overrides appended.

Every run's config is resolved through the normal loader *before* anything runs, so a bad key or value
fails at once with the loader's one-line error. A run is *done* when its ``report.json`` was made with
exactly its config (``config_fingerprint``); done runs are skipped, failed and pending ones (re)run.

Executors:

- ``local`` runs the runs one after another, each as a ``musc-ecd run`` **subprocess**: a crash, an
  out-of-memory kill or a vLLM engine that never frees its memory ends that run only; the next one starts
  in a clean process. Output streams to the console and ``RUN_DIR/console.log``. A failed run is
  recorded (``RUNS_DIR/sweep_status.json``, with the error) and the sweep goes on; the exit code is 1
  if any run failed.
- ``slurm`` submits the runs that are not done as one job array through ``submitit.AutoExecutor``
  (``slurm.cluster``: unset = detect, ``slurm``, or ``local``/``debug`` to test without SLURM), then
  waits for them and records each result (``slurm.wait: false`` = submit and return).

``musc-ecd sweep FILE --only NAME`` runs only the named runs (the status book keeps every run), so a long
sweep can go one run at a time; ``musc-ecd publish RUNS_DIR DEST`` (``publish``) copies each finished run's
checkable outputs into a folder to commit.

Runs share work through ``share_dir`` (see ``musc_ecd.pipeline``): runs that differ only in training
options generate their pairs once, and the base model is evaluated once per policy and set.
"""

from musc_ecd.sweep.execute import execute, format_plan, run_job, run_state
from musc_ecd.sweep.spec import Sweep, SweepRun, Variant, dotlist_value, expand, load_sweep, run_names, short_keys

__all__ = ["Sweep", "SweepRun", "Variant", "dotlist_value", "execute", "expand", "format_plan", "load_sweep",
           "run_job", "run_names", "run_state", "short_keys"]
