"""Code chunking with tree-sitter: qualified symbols and exact line spans in every language."""

import itertools
import re
import textwrap
import time
from pathlib import Path

import pytest

from ingestion.errors import FileRejected
from ingestion.sources.base import Chunk
from ingestion.sources.code import (
    LANGUAGES,
    MAX_CODE_LINES,
    MERGE_MAX_CHARS,
    SMALL_DEFINITION_LINES,
    chunk_code,
    chunk_python,
    read_code,
)

POLYGLOT = Path(__file__).parents[1] / "data" / "polyglot"

# (symbol, line_start, line_end) of every chunk of every file in tests/data/polyglot.
EXPECTED: dict[str, list[tuple[str, int, int]]] = {
    "py/shop/cart.py": [
        ("", 1, 10),
        ("cents, euros", 13, 18),
        ("", 21, 22),
        ("Item", 25, 29),
        ("CartError", 32, 41),
        ("Cart", 44, 49),
        ("Cart.__init__", 50, 54),
        ("Cart.add", 55, 62),
        ("Cart.remove", 63, 67),
        ("Cart.clear", 68, 71),
        ("Cart.count", 72, 75),
        ("Cart.__len__", 76, 78),
        ("Cart.__contains__", 79, 81),
        ("Cart.skus", 82, 84),
        ("Cart.quantity_of", 85, 88),
        ("Cart.apply", 89, 93),
        ("Cart.subtotal", 94, 97),
        ("Cart.tax", 98, 101),
        ("Cart.taxable", 102, 107),
        ("Cart.total", 108, 111),
        ("Cart.summary", 112, 116),
        ("Cart.Discount", 117, 124),
        ("checkout", 127, 137),
        ("", 140, 143),
    ],
    "js/cart.js": [
        ("", 1, 6),
        ("cents, euros", 8, 12),
        ("Cart", 14, 20),
        ("Cart.constructor", 21, 24),
        ("Cart.add", 25, 35),
        ("Cart.remove", 36, 42),
        ("Cart.clear", 43, 47),
        ("Cart.apply", 48, 54),
        ("Cart.subtotal", 55, 62),
        ("Cart.taxable", 63, 69),
        ("Cart.total", 70, 73),
        ("Cart.onRemoveClick", 74, 78),
        ("Cart.summary", 79, 87),
        ("Cart.fromJSON", 88, 95),
        ("CartError", 97, 102),
        ("Cart.toString", 104, 106),
        ("", 108, 108),
    ],
    "ts/cart.ts": [
        ("", 1, 4),
        ("Item, Sku, Status", 6, 17),
        ("cents, euros", 19, 24),
        ("Cart", 27, 32),
        ("Cart.constructor", 33, 34),
        ("Cart.add", 35, 41),
        ("Cart.remove", 42, 46),
        ("Cart.has", 47, 50),
        ("Cart.clear", 51, 55),
        ("Cart.skus", 56, 59),
        ("Cart.quantityOf", 60, 64),
        ("Cart.toJSON", 65, 68),
        ("Cart.count", 69, 76),
        ("Cart.subtotal", 77, 84),
        ("Cart.total", 85, 88),
        ("Cart.checkout", 89, 98),
        ("Cart.lines", 99, 102),
        ("Cart.ensureOpen", 103, 108),
        ("Log", 110, 114),
    ],
    "go/cart.go": [
        ("", 1, 13),
        ("Item, Cart, New", 15, 31),
        ("Cart.Add, Cart.Remove, Cart.Len, Cart.Empty", 33, 51),
        ("Cart.Total", 53, 64),
        ("Cart.SKUs", 66, 73),
    ],
    "java/Cart.java": [
        ("", 1, 6),
        ("Cart", 8, 18),
        ("Cart.Cart", 19, 22),
        ("Cart.add", 23, 32),
        ("Cart.remove", 33, 38),
        ("Cart.apply", 39, 45),
        ("Cart.subtotal", 46, 53),
        ("Cart.total", 54, 58),
        ("Cart.lines", 59, 66),
        ("Cart.toString", 67, 71),
        ("Cart.Item", 72, 79),
        ("Cart.Discount", 80, 94),
        ("Priced", 96, 98),
    ],
    "rust/cart.rs": [
        ("", 1, 6),
        ("Item, CartError", 8, 20),
        ("Priced", 22, 30),
        ("Cart", 32, 36),
        ("Cart", 38, 38),
        ("Cart.new", 39, 45),
        ("Cart.add", 46, 52),
        ("Cart.remove", 53, 58),
        ("Cart.set_quantity", 59, 72),
        ("Cart.merge", 73, 78),
        ("Cart.most_expensive", 79, 82),
        ("Cart.clear", 83, 86),
        ("Cart.len", 87, 90),
        ("Cart.is_empty", 91, 94),
        ("Cart.contains", 95, 98),
        ("Cart.quantity_of", 99, 102),
        ("Cart.skus", 103, 106),
        ("Cart.checkout", 107, 114),
        ("Cart.lines", 115, 121),
        ("Cart", 123, 133),
        ("tests", 135, 147),
    ],
    "c/cart.h": [
        ("", 1, 6),
        ("item_t, cart_t", 8, 19),
        ("", 21, 24),
    ],
    "c/cart.c": [
        ("", 1, 6),
        ("round_up, same_sku", 8, 10),
        ("cart_add", 12, 26),
        ("cart_total, describe", 28, 42),
        ("main", 44, 52),
    ],
    "cpp/cart.cpp": [
        ("", 1, 9),
        ("Item", 11, 15),
        ("Cart", 17, 19),
        ("Cart.Cart", 20, 24),
        ("Cart.empty", 25, 26),
        ("Cart.size", 27, 28),
        ("Cart.contains", 29, 30),
        ("Cart.skus", 31, 39),
        ("Cart.quantity_of", 40, 44),
        ("Cart.apply_discount", 45, 51),
        ("Cart.has_discount", 52, 53),
        ("Cart.subtotal", 54, 61),
        ("Cart.taxable", 62, 66),
        ("Cart.total", 67, 72),
        ("Cart.customer", 73, 74),
        ("Cart.clear", 75, 79),
        ("Cart.Line", 80, 85),
        ("Cart.lines", 86, 98),
        ("Cart.add, Cart.remove", 100, 111),
        ("operator<<", 113, 115),
    ],
    "cs/Cart.cs": [
        ("", 1, 3),
        ("Item, Status", 5, 9),
        ("Cart", 11, 19),
        ("Cart.Cart", 20, 30),
        ("Cart.Add", 31, 42),
        ("Cart.Remove", 43, 48),
        ("Cart.Apply", 49, 57),
        ("Cart.Subtotal", 58, 59),
        ("Cart.Total", 60, 65),
        ("Cart.TotalText", 66, 68),
        ("Cart.Lines", 69, 76),
        ("Cart.Checkout", 77, 87),
        ("Cart.EnsureOpen", 88, 95),
        ("CartExtensions", 97, 100),
    ],
    "ruby/cart.rb": [
        ("", 1, 4),
        ("Shop", 6, 8),
        ("Shop.CartError", 9, 10),
        ("Shop.Cart", 11, 18),
        ("Shop.Cart.for", 19, 22),
        ("Shop.Cart.initialize", 23, 28),
        ("Shop.Cart.add", 29, 37),
        ("Shop.Cart.remove", 38, 41),
        ("Shop.Cart.each", 42, 45),
        ("Shop.Cart.apply", 46, 51),
        ("Shop.Cart.subtotal", 52, 55),
        ("Shop.Cart.taxable", 56, 61),
        ("Shop.Cart.total", 62, 65),
        ("Shop.Cart.lines", 66, 69),
        ("Shop.Cart.empty?", 70, 73),
        ("Shop.Cart.include?", 74, 77),
        ("Shop.Cart.quantity_of", 78, 81),
        ("Shop.Cart.clear", 82, 86),
        ("Shop.Cart.restore", 87, 94),
        ("Shop.Cart.to_s", 95, 99),
        ("Shop.checkout", 100, 105),
    ],
    "php/Cart.php": [
        ("", 1, 12),
        ("cents, euros, Priced", 14, 27),
        ("Cart", 29, 39),
        ("Cart.__construct", 40, 43),
        ("Cart.add", 44, 54),
        ("Cart.remove", 55, 62),
        ("Cart.apply", 63, 70),
        ("Cart.subtotal", 71, 79),
        ("Cart.total", 80, 86),
        ("Cart.count", 87, 91),
        ("Cart.has", 92, 96),
        ("Cart.clear", 97, 102),
        ("Cart.lines", 103, 111),
    ],
}

LANGUAGE_OF = {
    "py/shop/cart.py": "python",
    "js/cart.js": "javascript",
    "ts/cart.ts": "typescript",
    "go/cart.go": "go",
    "java/Cart.java": "java",
    "rust/cart.rs": "rust",
    "c/cart.h": "c",
    "c/cart.c": "c",
    "cpp/cart.cpp": "cpp",
    "cs/Cart.cs": "csharp",
    "ruby/cart.rb": "ruby",
    "php/Cart.php": "php",
}


def _read(path: str) -> tuple[str, list[Chunk]]:
    text = (POLYGLOT / path).read_text(encoding="utf-8")
    return text, read_code(path, text).chunks


def _spans(chunks: list[Chunk]) -> list[tuple[str, int, int]]:
    return [(c.symbol, c.line_start, c.line_end) for c in chunks]


def _assert_exact_lines(source: str, chunks: list[Chunk]) -> None:
    lines = source.splitlines()
    for chunk in chunks:
        assert chunk.text == "\n".join(lines[chunk.line_start - 1 : chunk.line_end]), chunk
        assert 1 <= chunk.line_start <= chunk.line_end <= len(lines)


def _by_symbol(chunks: list[Chunk], symbol: str) -> Chunk:
    """The first chunk with this symbol (a Rust type and its impl blocks share one)."""
    return next(c for c in chunks if c.symbol == symbol)


def test_fixtures_are_all_expected() -> None:
    on_disk = {p.relative_to(POLYGLOT).as_posix() for p in POLYGLOT.rglob("*") if p.is_file()}
    assert on_disk == set(EXPECTED) == set(LANGUAGE_OF)


class TestPolyglot:
    @pytest.mark.parametrize("path", list(EXPECTED))
    def test_chunks_have_exact_symbols_and_spans(self, path: str) -> None:
        source, chunks = _read(path)
        assert _spans(chunks) == EXPECTED[path]
        _assert_exact_lines(source, chunks)
        assert {(c.kind, c.language, c.path) for c in chunks} == {("code", LANGUAGE_OF[path], path)}

    @pytest.mark.parametrize("path", list(EXPECTED))
    def test_chunks_are_ordered_and_cover_every_line_of_code(self, path: str) -> None:
        source, chunks = _read(path)
        covered: set[int] = set()
        previous_end = 0
        for chunk in chunks:
            assert chunk.line_start > previous_end
            assert chunk.line_end - chunk.line_start < MAX_CODE_LINES
            previous_end = chunk.line_end
            covered.update(range(chunk.line_start, chunk.line_end + 1))
        # Only blank lines and closing lines (`}  // namespace shop`, `#endif`) may be left out.
        left_out = [
            line
            for number, line in enumerate(source.splitlines(), start=1)
            if number not in covered and not re.match(r"\s*(\}.*|#endif.*|end)?$", line)
        ]
        assert left_out == []

    @pytest.mark.parametrize(
        ("path", "symbol", "imported", "signature"),
        [
            ("py/shop/cart.py", "Cart.add", "decimal", "class Cart:"),
            (
                "js/cart.js",
                "Cart.add",
                "./analytics.js",
                "export class Cart {",
            ),
            (
                "ts/cart.ts",
                "Cart.checkout",
                "./money",
                "export class Cart<T extends Item = Item> {",
            ),
            ("go/cart.go", "Cart.Total", "sort", "type Cart struct {"),
            ("java/Cart.java", "Cart.add", "java.util.Map", "public class Cart {"),
            ("rust/cart.rs", "Cart.add", "std::collections::BTreeMap", "impl Cart {"),
            ("cpp/cart.cpp", "Cart.total", "map", "class Cart {"),
            ("cpp/cart.cpp", "Cart.add, Cart.remove", "vector", "class Cart {"),
            ("cs/Cart.cs", "Cart.Add", "System.Linq", "public class Cart\n{"),
            ("ruby/cart.rb", "Shop.Cart.add", "item", "module Shop\nclass Cart"),
            ("php/Cart.php", "Cart.add", "App\\Shop\\Item", "final class Cart implements"),
        ],
    )
    def test_method_embeds_path_imports_and_class_signature(
        self, path: str, symbol: str, imported: str, signature: str
    ) -> None:
        _, chunks = _read(path)
        method = _by_symbol(chunks, symbol)
        assert method.embed_text.startswith(f"{path} {symbol}\n")
        # The imports as one short line of module names, to spare the embedder's window.
        imports = method.embed_text.splitlines()[1]
        assert imports.startswith("imports: ")
        assert imported in imports.removeprefix("imports: ").split(", ")
        assert signature in method.embed_text
        # The context is embedded, never shown: the text is the method alone.
        assert "imports: " not in method.text
        assert method.embed_text.endswith(method.text)

    @pytest.mark.parametrize(
        ("path", "symbol", "first_line"),
        [
            ("py/shop/cart.py", "Cart.add", "    # Adding an item twice raises its quantity."),
            ("py/shop/cart.py", "Cart.subtotal", "    @property"),
            ("py/shop/cart.py", "Item", "@dataclass(frozen=True)"),
            ("js/cart.js", "Cart.add", "  /** Adding an item twice raises its quantity. */"),
            ("ts/cart.ts", "Cart", "/** A customer's cart; one per session. */"),
            ("ts/cart.ts", "Cart.checkout", "  @Log()"),
            ("go/cart.go", "Cart.Total", "// Total is the subtotal less the discount, plus tax."),
            ("java/Cart.java", "Cart.toString", "    @Override"),
            ("rust/cart.rs", "Cart", "#[derive(Default)]"),
            ("rust/cart.rs", "tests", "#[cfg(test)]"),
            ("cs/Cart.cs", "Cart", "    /// <summary>A customer's cart of items, with at most"),
            ("cs/Cart.cs", "Cart.TotalText", '        [Obsolete("Use Total() and format it'),
            ("php/Cart.php", "Cart.total", "    #[\\Override]"),
            ("ruby/cart.rb", "Shop.Cart.restore", "    class << self"),
        ],
    )
    def test_definitions_start_at_their_comments_and_decorators(
        self, path: str, symbol: str, first_line: str
    ) -> None:
        _, chunks = _read(path)
        assert _by_symbol(chunks, symbol).text.startswith(first_line)

    def test_locator_names_path_lines_and_symbol(self) -> None:
        _, chunks = _read("py/shop/cart.py")
        locator = _by_symbol(chunks, "Cart.add").locator
        assert {key: locator[key] for key in ("path", "lines", "symbol")} == {
            "path": "py/shop/cart.py",
            "lines": [55, 62],
            "symbol": "Cart.add",
        }


def _java_class(name: str, methods: int, body_lines: int) -> str:
    members = "\n".join(
        f"    int m{i}() {{\n"
        + "".join(f"        int x{j} = {j};\n" for j in range(body_lines))
        + "        return 0;\n    }\n"
        for i in range(methods)
    )
    return f"class {name} extends Base {{\n    private int field;\n\n{members}}}\n"


class TestLargeClasses:
    def test_large_class_is_split_into_header_and_methods(self) -> None:
        source = "import java.util.List;\n\n" + _java_class("Big", methods=8, body_lines=8)
        chunks = chunk_code("Big.java", source, "java")
        assert _spans(chunks)[:3] == [("", 1, 1), ("Big", 3, 5), ("Big.m0", 6, 17)]
        assert [c.symbol for c in chunks[2:]] == [f"Big.m{i}" for i in range(8)]
        # the last method owns the class's closing brace
        assert chunks[-1].line_end == len(source.splitlines())
        assert all("class Big extends Base {" in c.embed_text for c in chunks[2:])
        assert all("imports: java.util.List" in c.embed_text for c in chunks)
        _assert_exact_lines(source, chunks)

    def test_small_class_stays_one_chunk(self) -> None:
        source = _java_class("Small", methods=2, body_lines=3)
        chunks = chunk_code("Small.java", source, "java")
        assert _spans(chunks) == [("Small", 1, len(source.splitlines()))]

    def test_nested_classes_are_qualified_outer_inner_method(self) -> None:
        methods = "".join(
            f"        def m{i}(self):\n" + "".join(f"            x = {j}\n" for j in range(10))
            for i in range(8)
        )
        source = f"class Outer:\n    class Inner:\n{methods}\n    def after(self):\n        pass\n"
        chunks = chunk_python("nested.py", source)
        assert [c.symbol for c in chunks] == [
            "Outer",
            "Outer.Inner",
            *(f"Outer.Inner.m{i}" for i in range(8)),
            "Outer.after",
        ]
        assert "class Outer:\nclass Inner:" in _by_symbol(chunks, "Outer.Inner.m3").context
        _assert_exact_lines(source, chunks)

    def test_large_class_without_methods_is_cut_into_windows(self) -> None:
        constants = "".join(f"    C{i} = {i}\n" for i in range(MAX_CODE_LINES + 20))
        source = f"class Codes:\n{constants}"
        chunks = chunk_python("codes.py", source)
        assert [c.symbol for c in chunks] == ["Codes", "Codes"]
        assert (chunks[0].line_start, chunks[-1].line_end) == (1, MAX_CODE_LINES + 21)


class TestSmallNeighbours:
    def test_small_functions_merge_up_to_the_size_limit(self) -> None:
        source = "\n\n".join(
            f"def f{i}(a, b):\n    total = a + b + {i}\n    return total\n" for i in range(40)
        )
        chunks = chunk_python("small.py", source)
        assert 1 < len(chunks) < 40
        names = [name for c in chunks for name in c.symbol.split(", ")]
        assert names == [f"f{i}" for i in range(40)]
        assert all(len(c.text) <= MERGE_MAX_CHARS for c in chunks)
        assert chunks[0].symbol.startswith("f0, f1, f2")
        _assert_exact_lines(source, chunks)

    def test_a_definition_over_the_threshold_is_not_merged(self) -> None:
        long_body = "".join(f"    x{i} = {i}\n" for i in range(SMALL_DEFINITION_LINES))
        source = f"def a():\n    pass\n\n\ndef b():\n{long_body}\n\ndef c():\n    pass\n"
        chunks = chunk_python("m.py", source)
        assert [c.symbol for c in chunks] == ["a", "b", "c"]

    def test_module_code_between_definitions_keeps_them_apart(self) -> None:
        source = "def a():\n    pass\n\n\nLIMIT = 3\n\n\ndef b():\n    pass\n"
        chunks = chunk_python("m.py", source)
        assert _spans(chunks) == [("a", 1, 2), ("", 5, 5), ("b", 8, 9)]

    def test_methods_merge_only_with_methods_of_the_same_type(self) -> None:
        source = textwrap.dedent(
            """\
            package shop

            func New() *Cart { return &Cart{} }

            func (c *Cart) Len() int { return len(c.items) }

            func (c *Cart) Empty() bool { return c.Len() == 0 }

            func (o *Order) Paid() bool { return o.paid }
            """
        )
        chunks = chunk_code("shop.go", source, "go")
        assert _spans(chunks) == [
            ("", 1, 1),
            ("New", 3, 3),
            ("Cart.Len, Cart.Empty", 5, 7),
            ("Order.Paid", 9, 9),
        ]


class TestWindows:
    @pytest.mark.parametrize(
        ("path", "language", "head", "line", "tail"),
        [
            ("long.py", "python", "def long():\n", "    y = {i}\n", ""),
            ("long.go", "go", "package p\n\nfunc Long() {\n", "\ty := {i}\n", "}\n"),
            ("long.rs", "rust", "fn long() {\n", "    let y = {i};\n", "}\n"),
        ],
    )
    def test_long_function_is_covered_by_windows(
        self, path: str, language: str, head: str, line: str, tail: str
    ) -> None:
        body = "".join(line.format(i=i) for i in range(MAX_CODE_LINES * 2 + 30))
        source = head + body + tail
        chunks = [c for c in chunk_code(path, source, language) if c.symbol]
        assert len(chunks) == 3
        assert {c.symbol for c in chunks} == {"long" if language != "go" else "Long"}
        assert all(c.line_end - c.line_start + 1 <= MAX_CODE_LINES for c in chunks)
        for before, after in itertools.pairwise(chunks):
            assert after.line_start == before.line_end + 1
        function_start = head.count("\n")
        assert (chunks[0].line_start, chunks[-1].line_end) == (
            function_start,
            len(source.splitlines()),
        )
        _assert_exact_lines(source, chunks)

    def test_file_without_definitions_becomes_line_windows(self) -> None:
        source = "\n".join(f"SETTING_{i} = {i}" for i in range(300)) + "\n"
        chunks = chunk_python("settings.py", source)
        assert len(chunks) > 1
        assert {c.symbol for c in chunks} == {""}
        assert (chunks[0].line_start, chunks[-1].line_end) == (1, 300)
        assert all(c.line_end - c.line_start + 1 <= MAX_CODE_LINES for c in chunks)
        _assert_exact_lines(source, chunks)


class TestReadCode:
    def test_language_comes_from_the_suffix(self) -> None:
        document = read_code("src/App.TSX", "export const App = () => <div />;\n")
        assert document.kind == "code"
        assert document.meta == {"language": "tsx", "parse_errors": False}
        assert _spans(document.chunks) == [("App", 1, 1)]
        assert document.chunks[0].language == "tsx"

    def test_header_with_classes_is_read_as_cpp(self) -> None:
        c_header = read_code("point.h", "struct point { int x; };\n")
        cpp_header = read_code("point.h", "namespace geo {\nclass Point {};\n}\n")
        assert (c_header.meta["language"], cpp_header.meta["language"]) == ("c", "cpp")
        assert [c.symbol for c in cpp_header.chunks] == ["Point"]

    def test_language_argument_overrides_the_suffix(self) -> None:
        document = read_code("Rakefile", "def build\n  sh 'make'\nend\n", language="ruby")
        assert _spans(document.chunks) == [("build", 1, 3)]

    def test_unknown_suffix_is_rejected_with_the_reason(self) -> None:
        with pytest.raises(FileRejected, match=r"no code parser for \.kt files"):
            read_code("Main.kt", "fun main() {}\n")

    def test_unknown_language_is_rejected(self) -> None:
        with pytest.raises(FileRejected, match="kotlin"):
            read_code("Main.kt", "fun main() {}\n", language="kotlin")

    def test_every_required_suffix_has_a_working_parser(self) -> None:
        required = {".py", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".go", ".java", ".rs"}
        required |= {".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".cs", ".rb", ".php"}
        assert required <= set(LANGUAGES)
        for suffix in LANGUAGES:
            assert read_code(f"empty{suffix}", "").chunks == []

    def test_chunk_python_is_read_code_for_python(self) -> None:
        source, _ = _read("py/shop/cart.py")
        assert (
            chunk_python("py/shop/cart.py", source) == read_code("py/shop/cart.py", source).chunks
        )

    def test_syntax_errors_still_yield_the_definitions_that_parse(self) -> None:
        source = "function ok() {\n  return 1;\n}\n\nfunction broken( {\n\n\nclass Later {}\n"
        document = read_code("broken.js", source)
        assert document.meta["parse_errors"] is True
        assert document.chunks[0].symbol.startswith("ok")
        _assert_exact_lines(source, document.chunks)

    def test_windows_line_endings_keep_line_numbers(self) -> None:
        source = "import os\r\n\r\n\r\ndef a():\r\n    return os.sep\r\n"
        chunks = chunk_python("crlf.py", source)
        assert _spans(chunks) == [("", 1, 1), ("a", 4, 5)]
        assert chunks[1].text == "def a():\n    return os.sep"

    def test_definitions_sharing_a_line_become_one_chunk(self) -> None:
        source = "function a(){return 1}function b(){return 2}\nclass C { m() {} }\n"
        chunks = read_code("min.js", source).chunks
        assert _spans(chunks) == [("a, b, C", 1, 2)]

    def test_ten_thousand_lines_take_well_under_a_second(self) -> None:
        source = "import os\n\n" + "".join(
            f"def f{i}(x):\n    y = x + {i}\n    if y > 10:\n        return y\n    return 0\n\n\n"
            for i in range(1430)
        )
        assert len(source.splitlines()) >= 10_000
        started = time.perf_counter()
        chunks = chunk_python("big.py", source)
        assert time.perf_counter() - started < 1.0
        assert len(chunks) > 100
