"""The package's layering, read from the source: no import cycle, training/ never reaches into analysis/,
and serving (policies/) never needs a trainer or the training data loader."""

import ast
import pathlib

SRC = pathlib.Path(__file__).parents[1] / "src"
TRAINERS_AND_LOADER = {"openpi.training.jax_trainer", "openpi.training.pytorch_trainer", "openpi.training.data_loader"}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(node: ast.AST):
    """Every node, function bodies included, except ``if TYPE_CHECKING:`` blocks (never imported at run time)."""
    for child in ast.iter_child_nodes(node):
        test = child.test if isinstance(child, ast.If) else None
        if test is not None and "TYPE_CHECKING" in ast.unparse(test):
            continue
        yield child
        yield from _runtime_nodes(child)


def _imports(tree: ast.Module, modules: set[str]) -> set[str]:
    """Imported openpi modules, at module or function level: ``from openpi.x import y`` is ``openpi.x.y`` when
    that is a module, else ``openpi.x``."""
    out = set()
    nodes = list(_runtime_nodes(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("openpi")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("openpi"):
            out |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names}
    return out & modules


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in (SRC / "openpi").rglob("*.py")}
    return {
        name: _imports(ast.parse(path.read_text()), set(paths))
        for name, path in paths.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_graph_is_read():
    graph = _graph()
    assert "openpi.training.config" in graph["openpi.training.jax_trainer"]  # the reader sees real edges
    assert "openpi.training.config" in graph["openpi.analysis.sources"]
    assert "openpi.transforms" in graph["openpi.training.data_config"]
    function_level = ast.parse("def f():\n    from openpi import transforms\n")
    assert _imports(function_level, {"openpi.transforms"}) == {"openpi.transforms"}  # function-level imports count
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_no_import_cycle():
    assert _cycle(_graph()) is None


# In-training validation reports eval_policy's metrics by calling its code (so a wandb panel and eval_policy agree).
VALIDATION = "openpi.training.validation"


def test_training_imports_nothing_from_analysis():
    graph = _graph()
    bad = {(m, d) for m, deps in graph.items() if m.startswith("openpi.training") and m != VALIDATION
           for d in deps if "analysis" in d}
    assert not bad


def test_policies_import_no_trainer_or_data_loader():
    graph = _graph()
    bad = {(m, d) for m, deps in graph.items() if m.startswith("openpi.policies") for d in deps & TRAINERS_AND_LOADER}
    assert not bad


SCRIPTS = pathlib.Path(__file__).parents[1] / "scripts"


def test_scripts_import_no_other_script():
    """A script is a command line over the package: it never imports a sibling script (``import demo``,
    ``importlib.import_module("demo")``, loading it from its file, or putting scripts/ on ``sys.path``)."""
    names = {p.stem for p in SCRIPTS.glob("*.py")}

    def script_imports(source: str) -> set[str]:
        found = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names} & names
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found |= {node.module.split(".")[0]} & names
            elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith(
                ("import_module", "spec_from_file_location", "sys.path.insert", "sys.path.append")
            ):
                found.add(ast.unparse(node))
        return found

    assert script_imports("import demo\nfrom eval_policy import run") == {"demo", "eval_policy"}
    assert script_imports("import importlib\nm = importlib.import_module('demo')")
    assert not script_imports("import json\nfrom openpi.experiments import evaluation")
    bad = {path.name: found for path in sorted(SCRIPTS.glob("*.py")) if (found := script_imports(path.read_text()))}
    assert not bad


NAMES_MODULE = "openpi.shared.checkpoint_files"


def _checkpoint_names() -> dict[str, set[str]]:
    """Names the checkpoint-name module defines, and the ones that are distinctive enough to find in any string.
    ``params`` and ``config.json`` are common words, found only where a path is joined with them; ``assets`` is also
    the usual name of the assets base dir (``--assets-base-dir``), so it cannot be told apart and is not checked."""
    tree = ast.parse((SRC / "openpi" / "shared" / "checkpoint_files.py").read_text())
    names = {node.value.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
             and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}
    names.discard("assets")
    return {"path_part": names, "anywhere": names - {"params", "config.json"}}


def _spelled_names(tree: ast.AST, names: dict[str, set[str]]) -> set[str]:
    """Checkpoint names a module spells out: in a word-like string (no spaces: docstrings and messages may mention
    them) or as the right side of a path join (``step_dir / "params"``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " " not in node.value:
            found |= {n for n in names["anywhere"] if n in node.value}
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant):
            found |= {n for n in names["path_part"] if node.right.value == n}
    return found


def test_only_one_module_knows_checkpoint_file_names():
    names = _checkpoint_names()
    assert {"model.safetensors", "optimizer.pt", "metadata.pt", "train_state"} <= names["anywhere"]
    sources = {_module_name(p): p for p in (SRC / "openpi").rglob("*.py")}
    sources |= {f"scripts.{p.stem}": p for p in (SRC.parent / "scripts").glob("*.py")}
    spelled = {name: _spelled_names(ast.parse(path.read_text()), names) for name, path in sources.items()
               if name != NAMES_MODULE}
    assert not {name: found for name, found in spelled.items() if found}
    # The check finds both forms.
    assert _spelled_names(ast.parse('x = d / "params"; y = f"{d}/optimizer.pt"'), names) == {"params", "optimizer.pt"}
