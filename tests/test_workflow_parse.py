"""The workflow without an installed medslip (issue 11), and its conda env files.

* Snakemake alone parses it: an interpreter holding only Snakemake and its own dependencies (no
  medslip, numpy, pandas, torch...) dry-runs ``all`` and plans the same jobs as the full stack.
* Its conda envs hold third-party packages only, pinned to the versions of
  scripts/constraints.txt (the pip stack's one source of versions; conda-forge names where they
  differ), and each env holds what the commands of its rules import. Jobs run medslip from the
  workflow's source tree: with a stand-in ``conda`` (real conda cannot create envs on this
  machine) that builds each env from its YAML file out of the packages installed here, Snakemake
  runs real rules with ``--sdm conda``, its env prefix and the working directory both away from
  the repository and no ``medslip`` command on PATH.

An env is a venv whose site-packages links the wanted distributions, and everything they require,
from this interpreter's, so nothing is downloaded.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests._workflow import make_workdir, snakemake
from tests.conftest import REPO
from tests.test_workflow_targets import _jobs

ENVS = REPO / "workflow" / "envs"
ENV_FILES = (REPO / "environment.yml", *sorted(ENVS.glob("*.yaml")))
CONSTRAINTS = REPO / "scripts" / "constraints.txt"
CONDA_TO_PYPI = {"pytorch": "torch", "python-lmdb": "lmdb", "matplotlib-base": "matplotlib"}
"""conda-forge package names whose PyPI distribution is named otherwise."""
CONDA_SPEC = re.compile(r"([A-Za-z0-9_.-]+)=([^=\s]+)(?:=(\S+))?")
PIP_SPEC = re.compile(r"([A-Za-z0-9_.-]+)==(\S+)")
HEAVY = ("medslip", "numpy", "pandas", "torch", "scipy", "sklearn", "PIL", "lmdb", "pyarrow")
"""Modules an interpreter with Snakemake alone must not have."""
TORCH = {"cpu": "pytorch=2.13.0=cpu*", "gpu": "pytorch=2.13.0=cuda*"}
"""conda-forge's PyTorch builds: CPU for every env but gpu.yaml."""
GPU_CONFIG = "evaluate: {gpus: 1}\nfinetune: {gpus: 1}\npresets: {tiny: {train: {gpus: 1}}}\n"
"""On .test/config.yaml: every model rule gets a GPU, so it uses envs/gpu.yaml."""


def _dvc_stages():
    """scripts/dvc_stages.py as a module (its parsed workflow and import graph)."""
    spec = importlib.util.spec_from_file_location("dvc_stages", REPO / "scripts" / "dvc_stages.py")
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


def constraints() -> dict[str, str]:
    """{canonical PyPI name: version} of scripts/constraints.txt."""
    lines = [ln.split("#")[0].strip() for ln in CONSTRAINTS.read_text().splitlines()]
    pins = {}
    for line in filter(None, lines):
        (spec,) = Requirement(line).specifier
        assert spec.operator == "==", f"constraints.txt: {line!r} is not name==version"
        pins[canonicalize_name(Requirement(line).name)] = spec.version
    return pins


def env_specs(env_file: Path) -> dict[str, str]:
    """{PyPI name: pinned version} of a conda env file's packages (python left out), its conda
    part as ``name=version[=build]``, its pip part as ``name==version``; any other form fails."""
    deps = yaml.safe_load(env_file.read_text())["dependencies"]
    specs = {}
    for dep in deps:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                if line.startswith(("-c ", "-e ")):
                    continue
                m = PIP_SPEC.fullmatch(line)
                assert m, f"{env_file.name}: {line!r} is not name==version"
                specs[m[1]] = m[2]
            continue
        m = CONDA_SPEC.fullmatch(dep)
        assert m, f"{env_file.name}: {dep!r} is not name=version[=build]"
        if m[1] != "python":
            specs[CONDA_TO_PYPI.get(m[1], m[1])] = m[2]
    return specs


def env_requirements(env_file: Path) -> list[str]:
    """The PyPI distributions of a conda env file (python and pip left out)."""
    return [name for name in env_specs(env_file) if name != "pip"]


def _closure(names: list[str]) -> list[md.Distribution]:
    """The installed distributions ``names`` and every one they require (markers evaluated here;
    a requirement not installed here is left out: this venv runs without it)."""
    seen: dict[str, md.Distribution] = {}
    todo = [Requirement(n) for n in names]
    while todo:
        req = todo.pop()
        key = canonicalize_name(req.name)
        if key in seen:
            continue
        try:
            seen[key] = dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        for line in dist.requires or []:
            sub = Requirement(line)
            extras = req.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return list(seen.values())


def link_env(prefix: Path, names: list[str]) -> Path:
    """A venv at ``prefix`` whose site-packages links ``names`` and their requirements from this
    interpreter's; returns its ``bin/python``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = prefix / "lib" / version / "site-packages"
    for dist in _closure(names):
        tops = {f.parts[0] for f in dist.files or []} - {"..", "__pycache__"}
        for top in tops:
            source = Path(dist.locate_file(top))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    return prefix / "bin" / "python"


def test_env_files_pin_the_versions_of_the_constraints():
    pins = constraints()
    python = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    minor = re.fullmatch(r">=(3\.\d+),<3\.\d+", python)[1]
    for env_file in ENV_FILES:
        assert f"python={minor}" in yaml.safe_load(env_file.read_text())["dependencies"]
        for name, version in env_specs(env_file).items():
            want = pins.get(canonicalize_name(name))
            assert want, f"{env_file.name}: {name} is not in {CONSTRAINTS.name}"
            assert version == want, f"{env_file.name}: {name}={version}, constraints: {want}"
    (pip,) = [
        d["pip"]
        for d in yaml.safe_load(ENV_FILES[0].read_text())["dependencies"]
        if isinstance(d, dict)
    ]
    assert "-c scripts/constraints.txt" in pip  # environment.yml installs the rest at the pins


def test_this_venv_holds_the_versions_of_the_constraints():
    wrong = {
        name: md.version(name)
        for name, version in constraints().items()
        if md.version(name).split("+")[0] != version
    }
    assert not wrong, (
        f"installed here, not as {CONSTRAINTS.name} says (run scripts/setup.sh): {wrong}"
    )


def test_env_files_hold_third_party_packages_and_their_torch_build():
    for env_file in sorted(ENVS.glob("*.yaml")):
        text = env_file.read_text()
        deps = yaml.safe_load(text)["dependencies"]
        assert "medslip" not in yaml.safe_dump(deps), f"{env_file.name} installs medslip"
        assert "../" not in text and "-e " not in text, f"{env_file.name} names a path"
        torch = [d for d in deps if str(d).startswith("pytorch")]
        allowed = [[TORCH["gpu"]]] if env_file.name == "gpu.yaml" else [[], [TORCH["cpu"]]]
        assert torch in allowed, (env_file.name, torch)


def _third_party(module: str) -> set[str]:
    """Top-level names of the non-medslip, non-stdlib modules ``module`` imports (lazy too)."""
    found = set()
    source = REPO.joinpath(*module.split(".")).with_suffix(".py")
    if not source.is_file():
        source = source.with_suffix("") / "__init__.py"
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "medslip"}


def test_each_env_file_holds_what_the_commands_of_its_rules_import(tmp_path):
    """In an env built from each rule's env file (CPU and GPU configs), import every medslip
    module its ``medslip <command>`` imports (lazy imports too) and every third-party module those
    import, at the top or inside a function."""
    dvc_stages = _dvc_stages()
    commands = dvc_stages.command_modules(REPO)
    (tmp_path / "gpu.yaml").write_text(GPU_CONFIG)
    wanted: dict[str, set[str]] = {}
    for configs in ((), (REPO / ".test" / "config.yaml", tmp_path / "gpu.yaml")):
        for rule in dvc_stages.load_workflow(REPO, configs).rules:
            for command in rule.commands:
                modules = {commands[command]} | dvc_stages.imports(REPO, commands[command])
                names = modules | set().union(*map(_third_party, modules))
                wanted.setdefault(rule.conda_env, set()).update(names)
    assert {f"workflow/envs/{p.name}" for p in ENVS.glob("*.yaml")} == set(wanted)
    for env, modules in sorted(wanted.items()):
        python = link_env(tmp_path / Path(env).stem, env_requirements(REPO / env))
        code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)"
        res = subprocess.run(
            [python, "-c", code, *sorted(modules)],
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)},
        )
        assert res.returncode == 0, f"{env}: {res.stderr.strip().splitlines()[-1]}"


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _env_without_medslip(**extra: str) -> dict[str, str]:
    """This process's environment less PYTHONPATH and MEDSLIP_SRC, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEDSLIP_SRC")}
    return env | extra


def test_snakemake_alone_parses_the_workflow(tmp_path):
    python = link_env(tmp_path / "snakemake-only", ["snakemake"])
    for name in HEAVY:
        res = subprocess.run([python, "-c", f"import {name}"], capture_output=True, cwd=tmp_path)
        assert res.returncode != 0, f"{name} is importable beside Snakemake alone"

    work = make_workdir(_mkdir(tmp_path / "work"))
    cmd = [python, "-m", "snakemake", "-n", "--cores", "1", "all"]
    cmd += ["--configfile", ".test/config.yaml"]
    res = subprocess.run(cmd, cwd=work, env=_env_without_medslip(), capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    full = snakemake(make_workdir(_mkdir(tmp_path / "full")), "-n", "all")
    assert full.returncode == 0, full.stderr[-3000:]
    jobs = _jobs(res.stdout)
    assert jobs == _jobs(full.stdout)
    assert jobs["pretrain"] > 0 and jobs["finetune_seg"] > 0 and jobs["all"] == 1, jobs


FAKE_CONDA = """\
#!{python}
# Stand-in for conda: what Snakemake asks of it; `env create` builds the env from the YAML file
# that Snakemake copied beside the env prefix.
import json, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
args = sys.argv[1:]
if args == ["--version"]:
    print("conda 24.7.1")
elif args[:2] == ["info", "--json"]:
    print(json.dumps({{"conda_prefix": {base!r}, "platform": "linux-64"}}))
elif args[:2] == ["config", "--get"]:
    print(json.dumps({{"get": {{"channel_priority": "strict"}}}}))
elif args[:1] == ["clean"]:
    pass
elif args[:2] == ["env", "create"]:
    from tests.test_workflow_parse import env_requirements, link_env
    file, prefix = (Path(args[args.index(flag) + 1]) for flag in ("--file", "--prefix"))
    link_env(prefix, env_requirements(file))
else:
    sys.exit("fake conda: unsupported: " + " ".join(args))
"""


@pytest.mark.e2e
def test_conda_jobs_run_medslip_from_the_workflow_source(tmp_path):
    base = tmp_path / "conda"
    (base / "bin").mkdir(parents=True)
    conda = base / "bin" / "conda"
    conda.write_text(FAKE_CONDA.format(python=sys.executable, repo=str(REPO), base=str(base)))
    conda.chmod(0o755)
    (base / "bin" / "activate").write_text('export PATH="$1/bin:$PATH" CONDA_PREFIX="$1"\n')

    python = link_env(tmp_path / "snakemake-only", ["snakemake"])
    work = make_workdir(_mkdir(tmp_path / "work"))
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not Path(p, "medslip").exists()]
    env = _env_without_medslip(PATH=os.pathsep.join([str(base / "bin"), *path]))
    targets = [
        "results/tables/report_labels.csv",  # synth.yaml, reports.yaml, results.yaml
        "results/data/nih_cxr14/splits.csv",  # data.yaml
        "results/models/text_books.safetensors",  # train.yaml (CPU PyTorch)
    ]
    cmd = [python, "-m", "snakemake", "--cores", "2", "--sdm", "conda"]
    cmd += ["--conda-prefix", str(tmp_path / "envs"), *targets]
    cmd += ["--configfile", ".test/config.yaml"]
    res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-6000:]
    for target in targets:
        assert (work / target).stat().st_size > 0, target
    # One env per env file used, built from that file alone: the jobs found medslip through the
    # workflow's source tree (a checkout: the startup line names its git revision).
    created = sorted(p.name for p in (tmp_path / "envs").glob("*.yaml"))
    assert len(created) == 5, created
    assert not list((tmp_path / "envs").glob("*/lib/python*/site-packages/medslip*"))
    log = (work / "results/logs/data/splits_nih_cxr14.log").read_text()
    assert re.search(r"medslip \S+ \(git (?!unknown)[^)]+\)", log), log[:500]


def test_jobs_run_medslip_with_snakemakes_interpreter_and_nothing_on_path(tmp_path):
    """Without conda, a job's `medslip` is the workflow's source tree run by the interpreter
    that runs Snakemake: no `medslip` command on PATH (Snakemake called by its full path, as
    `.venv/bin/snakemake` is without activating the venv)."""
    work = make_workdir(_mkdir(tmp_path / "work"))
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not Path(p, "medslip").exists()]
    target = "results/synthcxr/nih_cxr14"
    res = snakemake(work, target, env=_env_without_medslip(PATH=os.pathsep.join(path)))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert any((work / target).rglob("*.png")), "no images written"


def test_jobs_find_packages_on_the_callers_pythonpath_after_the_source_tree(tmp_path):
    """A job's PYTHONPATH is the workflow's source tree, then the caller's (dependencies given as
    wheels in a temporary site, as scripts/gpu_check.sh does on a machine without pip access);
    with none set, the source tree alone."""
    from snakemake.shell import shell

    _dvc_stages().load_workflow(REPO, (REPO / ".test" / "config.yaml",))
    site = _mkdir(tmp_path / "site")
    (site / "wheel_only.py").write_text("NAME = 'from the caller'\n")
    job = 'echo "$PYTHONPATH"; python -c "import medslip, wheel_only; print(wheel_only.NAME)"'
    env = _env_without_medslip(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    res = subprocess.run(
        ["bash", "-c", f"{shell._process_prefix} {job}"],
        env=env | {"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.splitlines() == [f"{REPO}:{site}", "from the caller"]
    alone = subprocess.run(
        ["bash", "-c", f'{shell._process_prefix} echo "$PYTHONPATH"'],
        env=env,
        capture_output=True,
        text=True,
    )
    assert alone.stdout.strip() == str(REPO)
