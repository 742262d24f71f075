"""The walls between modules (see docs and the design notes), read from the source with ``ast``.

Nothing here imports the package: a wall that only held because a test imported modules in a
lucky order would not be a wall. Imports inside functions count as much as top-level ones;
``if TYPE_CHECKING:`` imports count for the direct rules (a reader sees them too) but not for
what a module pulls in at run time.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "django_imagekit_storage"
SRC = ROOT / "src" / PACKAGE
DOCS = ROOT / "docs"

#: Modules that reach the network, directly or through a client library.
NETWORK = (
    "imagekitio",
    "httpx",
    "httpcore",
    "requests",
    "urllib3",
    "urllib.request",
    "http.client",
    "socket",
    "ssl",
)


@dataclass(frozen=True)
class Import:
    module: str  # absolute dotted name
    line: int
    type_only: bool  # inside ``if TYPE_CHECKING:``

    def is_(self, *names: str) -> bool:
        """Whether this imports one of ``names`` or something inside it."""
        return any(self.module == name or self.module.startswith(f"{name}.") for name in names)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments, to resolve ``import_module(NAME)``."""
    found: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


class _Collector(ast.NodeVisitor):
    def __init__(self, name: str, is_package: bool, constants: dict[str, str]) -> None:
        self.package = name if is_package else name.rpartition(".")[0]
        self.constants = constants
        self.type_only = False
        self.imports: list[Import] = []
        self.calls: list[tuple[str, int]] = []  # (called name, line)

    def _add(self, module: str, node: ast.stmt | ast.expr) -> None:
        self.imports.append(Import(module, node.lineno, self.type_only))

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.type_only, before = True, self.type_only
            for child in node.body:
                self.visit(child)
            self.type_only = before
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            module = ".".join([*base, *([node.module] if node.module else [])])
        else:
            module = node.module or ""
        if module == "__future__":
            return
        self._add(module, node)
        # ``from package import submodule`` imports the submodule.
        for alias in node.names:
            if f"{module}.{alias.name}" in modules():
                self._add(f"{module}.{alias.name}", node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        called = (
            func.id
            if isinstance(func, ast.Name)
            else f"{ast.unparse(func.value)}.{func.attr}"
            if isinstance(func, ast.Attribute)
            else ""
        )
        self.calls.append((called, node.lineno))
        # importlib.import_module("a.b") / import_module(CONSTANT): a dynamic import, same wall.
        if called.endswith("import_module") and node.args:
            argument = node.args[0]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                self._add(argument.value, node)
            elif isinstance(argument, ast.Name) and argument.id in self.constants:
                self._add(self.constants[argument.id], node)
        self.generic_visit(node)


@dataclass(frozen=True)
class Parsed:
    imports: tuple[Import, ...]
    calls: tuple[tuple[str, int], ...]


@cache
def parse(name: str) -> Parsed:
    path = modules()[name]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    collector = _Collector(name, path.name == "__init__.py", _string_constants(tree))
    collector.visit(tree)
    return Parsed(tuple(collector.imports), tuple(collector.calls))


def where(name: str, line: int) -> str:
    return f"{modules()[name].relative_to(ROOT)}:{line}"


def breaches(name: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{where(name, imp.line)} imports {imp.module}"
        for imp in parse(name).imports
        if imp.is_(*forbidden)
    ]


def assert_none(found: list[str], context: str = "") -> None:
    """Fail listing every breach as file:line, untruncated."""
    assert not found, "\n".join([*([context] if context else []), *found])


def runtime_closure(name: str) -> dict[str, str]:
    """Every package module ``name`` imports at run time, directly or through another one,
    mapped to the first import chain that reaches it."""
    chains = {name: name}
    todo = [name]
    while todo:
        current = todo.pop()
        for imp in parse(current).imports:
            if imp.type_only or imp.module not in modules() or imp.module in chains:
                continue
            chains[imp.module] = f"{chains[current]} -> {imp.module} ({where(current, imp.line)})"
            todo.append(imp.module)
    return chains


def ours(*names: str) -> tuple[str, ...]:
    return tuple(f"{PACKAGE}.{name}" for name in names)


def test_every_module_is_found() -> None:
    # A wrong root would make every wall below hold vacuously.
    assert set(ours("client", "checks", "images", "delivery", "storage", "conf")) <= set(modules())
    assert any(name.startswith(f"{PACKAGE}.testing") for name in modules())


def test_only_client_imports_the_sdk() -> None:
    found = [
        breach
        for name in modules()
        if name != f"{PACKAGE}.client"
        for breach in breaches(name, ("imagekitio",))
    ]
    assert_none(found)


def test_checks_reach_neither_client_storage_images_nor_the_network() -> None:
    name = f"{PACKAGE}.checks"
    assert_none(breaches(name, (*ours("client", "storage", "images"), *NETWORK)))
    # Nor through another module of ours, at run time.
    reached = runtime_closure(name)
    for module in reached:
        assert module not in ours("client", "storage", "images"), reached[module]
        assert_none(breaches(module, NETWORK), reached[module])


def test_images_know_nothing_of_storages_or_http() -> None:
    forbidden = (
        "django.core.files.storage",
        *ours("client", "storage", "delivery"),
        "http",
        *NETWORK,
    )
    assert_none(breaches(f"{PACKAGE}.images", forbidden))


#: File, process and settings access: delivery builds strings from strings.
NOT_PURE = ("os", "pathlib", "shutil", "tempfile", "io", "subprocess", "glob", "django.conf")
IO_CALLS = re.compile(r"^(open|print|input|.*\.(open|read_text|read_bytes|write_text|urlopen))$")


def test_delivery_does_no_io() -> None:
    name = f"{PACKAGE}.delivery"
    assert_none(breaches(name, (*NETWORK, "http", *NOT_PURE)))
    assert_none(
        [
            f"{where(name, line)} calls {called}()"
            for called, line in parse(name).calls
            if IO_CALLS.match(called)
        ]
    )


def test_the_stand_in_server_is_an_independent_reading_of_the_wire_contract() -> None:
    """No code shared with the modules it tests: a bug written twice would pass every test."""
    testing = [name for name in modules() if name.startswith(f"{PACKAGE}.testing")]
    found = [
        breach
        for name in testing
        for breach in breaches(name, ours("client", "delivery", "conf", "storage"))
        # The plugin's fixtures hand the user an ImageKitStorage pointed at the server: it
        # may create one (and nothing more), but the server itself never sees our code.
        if not (
            name == f"{PACKAGE}.testing.plugin" and breach.endswith(f"imports {PACKAGE}.storage")
        )
    ]
    assert_none(found)
    # And the server's own modules use nothing of the package outside ``testing``.
    for name in (f"{PACKAGE}.testing.server", f"{PACKAGE}.testing.__main__"):
        outside = [
            f"{where(name, imp.line)} imports {imp.module}"
            for imp in parse(name).imports
            if imp.is_(PACKAGE) and not imp.is_(f"{PACKAGE}.testing")
        ]
        assert_none(outside)


def test_rendering_never_reaches_the_network() -> None:
    """Templates -> responsive -> storage.url -> delivery: a page of images renders from
    string work, so neither the helpers nor the tags may talk to ImageKit themselves."""
    for name in (f"{PACKAGE}.responsive", f"{PACKAGE}.templatetags.imagekit_storage"):
        assert_none(breaches(name, (*ours("client"), "http", *NETWORK)))
        reached = runtime_closure(name)
        assert f"{PACKAGE}.client" not in reached, reached.get(f"{PACKAGE}.client")


def test_template_tags_are_thin() -> None:
    """The tag library parses arguments and calls ``responsive``; the Python helpers views
    and serializers use are the same code."""
    name = f"{PACKAGE}.templatetags.imagekit_storage"
    ours_imported = {imp.module for imp in parse(name).imports if imp.is_(PACKAGE)}
    assert ours_imported <= {PACKAGE, f"{PACKAGE}.responsive"}, ours_imported


class _ImportTimeReads(ast.NodeVisitor):
    """Settings and environment reads in code that runs when the module is imported: the
    module body and class bodies, not function bodies."""

    def __init__(self) -> None:
        self.found: list[tuple[str, int]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for child in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            if child is not None:
                self.visit(child)

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 (ast's visitor naming)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        return

    def visit_Attribute(self, node: ast.Attribute) -> None:
        base = ast.unparse(node.value)
        if base in {"settings", "django_settings", "django.conf.settings", "os.environ"}:
            self.found.append((f"{base}.{node.attr}", node.lineno))
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if ast.unparse(node.value) == "os.environ":
            self.found.append(("os.environ[...]", node.lineno))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if ast.unparse(node.func) in {"os.getenv", "os.environ.get", "getattr"} and (
            ast.unparse(node.func) != "getattr"
            or ast.unparse(node.args[0]) in {"settings", "django_settings"}
        ):
            self.found.append((f"{ast.unparse(node.func)}()", node.lineno))
        self.generic_visit(node)


def test_nothing_reads_settings_or_the_environment_at_import() -> None:
    """Options are resolved when a storage is created, never when a module is imported."""
    found = []
    for name, path in modules().items():
        visitor = _ImportTimeReads()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        found += [f"{where(name, line)} reads {what} at import" for what, line in visitor.found]
    assert_none(found)


COMMANDS = f"{PACKAGE}.management.commands."


def command_modules() -> list[str]:
    return [name for name in modules() if name.startswith(COMMANDS)]


def test_commands_are_thin() -> None:
    """A command parses arguments, calls the library and prints: it never talks to ImageKit,
    Pillow or the network itself, nor reaches into a library module's private names."""
    assert command_modules()
    for name in command_modules():
        assert_none(breaches(name, (*NETWORK, "PIL", *ours("client", "delivery"))))
        tree = ast.parse(modules()[name].read_text(encoding="utf-8"))
        private = [
            f"{where(name, node.lineno)} imports {node.module}.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE)
            for alias in node.names
            if alias.name.startswith("_")
        ]
        assert_none(private)
        # One Command class; besides it only small argument parsers and constants.
        classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
        assert classes == ["Command"], where(name, 1)
        helpers = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        for helper in helpers:
            length = (helper.end_lineno or helper.lineno) - helper.lineno + 1
            assert length <= 15, f"{where(name, helper.lineno)} {helper.name}: library code?"


def public_names(name: str) -> list[str]:
    tree = ast.parse(modules()[name].read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return [str(item) for item in value]
    raise AssertionError(f"{name} has no __all__")


@cache
def docs_text() -> str:
    pages = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


@pytest.mark.parametrize(
    "module",
    [PACKAGE, f"{PACKAGE}.testing", f"{PACKAGE}.testing.plugin", f"{PACKAGE}.responsive"],
    ids=str,
)
def test_every_public_name_is_documented(module: str) -> None:
    missing = [
        name
        for name in public_names(module)
        if not re.search(rf"\b{re.escape(name)}\b", docs_text())
    ]
    assert missing == [], f"{module}.__all__ names found in no page of docs/: {missing}"
