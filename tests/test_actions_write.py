"""dash.actions holds writes and dash.queries reads (issue 17): each kind of module in its place.

What a function does cannot be proved from its text, so these checks are deliberately simple:
a function in dash/actions that takes a session must show a sign of writing (an attribute it
sets, a row it adds or deletes, a write statement, or a call of another action); dash/queries
must never import dash.actions nor show any such sign.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACTIONS = ROOT / "dash" / "actions"
QUERIES = ROOT / "dash" / "queries"

#: Session methods that change state, and the names a session goes by here.
_WRITE_METHODS = {"add", "add_all", "delete", "flush", "merge", "begin_nested"}
_SESSIONS = {"session", "db", "s", "conn", "connection"}
#: Statement builders that change state (sqlalchemy's, and table methods), and the prefixes
#: of the module-level write statements built once.
_WRITE_BUILDERS = {"insert", "update", "delete"}
_WRITE_STATEMENTS = ("_INSERT", "_MARK", "_LEASE")


def _module_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _action_names(tree: ast.Module) -> set[str]:
    """Names a module imports from dash.actions (functions, or whole action modules)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dash.actions"):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def _sets_a_field(target: ast.expr) -> bool:
    """`x.y = …` or `x.y[k] = …`: a field of an object (a row) changes, not a local."""
    if isinstance(target, ast.Subscript):
        target = target.value
    return isinstance(target, ast.Attribute)


def _writes(
    node: ast.AST,
    others: dict[str, ast.FunctionDef],
    actions: set[str],
    seen: set[str],
    *,
    reading: bool = False,
) -> bool:
    """Whether `node` shows a sign of writing, directly or through a function of its module.

    `reading`: a query may still flush what is pending (so it reads it) and attach what it
    loaded to a row (`set_committed_value`); neither changes what is stored."""
    for child in ast.walk(node):
        if isinstance(child, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = child.targets if isinstance(child, ast.Assign) else [child.target]
            if any(_sets_a_field(t) for t in targets):
                return True
        if isinstance(child, ast.Attribute) and child.attr.startswith(_WRITE_STATEMENTS):
            return True
        if isinstance(child, ast.Name) and child.id.startswith(_WRITE_STATEMENTS):
            return True
        if not isinstance(child, ast.Call):
            continue
        func = child.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        receiver = func.value if isinstance(func, ast.Attribute) else None
        on_session = isinstance(receiver, ast.Name) and receiver.id in _SESSIONS
        if reading and (
            name in ("flush", "set_committed_value")
            or (name == "update" and isinstance(func, ast.Attribute))  # a dict's, a cache's
        ):
            continue
        if (name in _WRITE_METHODS and on_session) or name in _WRITE_BUILDERS:
            return True
        if name == "set_committed_value":
            return True
        root = func
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Name) and root.id in actions:
            return True  # calls another action
        if isinstance(func, ast.Name) and func.id in others and func.id not in seen:
            seen.add(func.id)
            if _writes(others[func.id], others, actions, seen, reading=reading):
                return True
    return False


def _takes_session(func: ast.FunctionDef) -> bool:
    args = func.args.posonlyargs + func.args.args + func.args.kwonlyargs
    return any(a.arg in ("session", "db") for a in args)


def test_every_action_that_takes_a_session_writes() -> None:
    readers = []
    for path in sorted(ACTIONS.glob("*.py")):
        tree = ast.parse(path.read_text())
        functions = _module_functions(tree)
        actions = _action_names(tree)
        for name, func in functions.items():
            if name.startswith("_") or not _takes_session(func):
                continue
            if not _writes(func, functions, actions, {name}):
                readers.append(f"{path.relative_to(ROOT)}:{func.lineno} {name}")
    assert not readers, "reads belong in dash/queries: " + ", ".join(readers)


def test_queries_never_write_nor_import_actions() -> None:
    found = []
    for path in sorted(QUERIES.glob("*.py")):
        tree = ast.parse(path.read_text())
        if _action_names(tree):
            found.append(f"{path.relative_to(ROOT)} imports dash.actions")
        for name, func in _module_functions(tree).items():
            if _writes(func, {}, set(), {name}, reading=True):
                found.append(f"{path.relative_to(ROOT)}:{func.lineno} {name} writes")
    assert not found, found
