"""Code: tree-sitter chunks, one per function, method or class, with a qualified symbol.

A chunk's text is exactly the source lines ``line_start..line_end`` (1-based, inclusive) and its
symbol is qualified within the file (``Outer.Inner.method``, whatever the language's own
separator), so a citation reads ``src/pkg/mod.py:120-164 Class.method``. Package-like scopes
(Java and Go packages, C#, C++, PHP and TypeScript namespaces) are left out of symbols, as the
path already places the file; Ruby modules and Rust ``mod`` blocks hold code and stay in.

- A definition's span includes the comments, decorators and attributes directly above it.
- A class longer than MAX_CODE_LINES is split: a header chunk (the class up to its first member)
  and one chunk per member; a member owns the class-level lines after it, up to the next one.
- Any other piece longer than MAX_CODE_LINES is cut into even windows with the same symbol.
- Runs of short top-level definitions are merged (symbol ``"add, sub"``), as long as they sit in
  one namespace and qualify the same type (Go's ``Cart.Len, Cart.Empty``).
- Code between definitions (imports, constants) forms chunks with symbol ``""``, grouped by
  paragraph; a file with no definitions becomes only such chunks.
- ``context`` (embedded, never shown) holds the path, the file's imports and, for a member, the
  signature lines of its enclosing classes or namespaces.

Tree-sitter recovers from syntax errors, so a broken file still yields what it could parse.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import cast

from tree_sitter import Node
from tree_sitter_language_pack import SupportedLanguage, get_parser

from ingestion.errors import FileRejected
from ingestion.sources.base import MAX_CHARS, Chunk, ParsedDocument, split_lines

# A function or class longer than this is split: classes by member, the rest by line windows.
MAX_CODE_LINES = 80
# A definition this short (a getter, a tiny helper) says too little to embed well on its own.
SMALL_DEFINITION_LINES = 8
# Merged small definitions stay within the embedder's window (about 256 word pieces).
MERGE_MAX_CHARS = MAX_CHARS
# Every chunk embeds the imports; past this many lines they add noise rather than meaning.
MAX_IMPORT_LINES = 20
# Of those, the modules named in the embedded context.
MAX_IMPORT_NAMES = 12
# A class signature with a long base list is cut to this many lines in its members' context.
MAX_SIGNATURE_LINES = 4

LANGUAGES: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".java": "java",
    ".rs": "rust",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".php": "php",
}


def _names(*names: str) -> frozenset[str]:
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class _Grammar:
    """Which node types of one tree-sitter grammar are definitions, and of what sort."""

    functions: frozenset[str]  # functions and methods: one chunk, or windows when long
    containers: frozenset[str] = frozenset()  # classes, impls, modules: split by member if long
    types: frozenset[str] = frozenset()  # other named definitions (enums, aliases): one chunk
    transparent: frozenset[str] = frozenset()  # namespaces, #ifdef: members count as siblings
    wrappers: frozenset[str] = frozenset()  # exported, decorated, template: the definition inside
    bindings: frozenset[str] = frozenset()  # `const f = () => ...`: a name bound to a definition
    attached: frozenset[str] = _names("comment")  # directly above: part of the definition
    imports: frozenset[str] = frozenset()  # also package lines: the module context
    needs_body: frozenset[str] = frozenset()  # without a body these only declare
    require: re.Pattern[str] | None = None  # imports written as calls


_JS_FUNCTIONS = _names(
    "function_declaration",
    "generator_function_declaration",
    "method_definition",
    "function_expression",
    "function",
    "arrow_function",
    "generator_function",
)
_JS_BINDINGS = _names(
    "lexical_declaration",
    "variable_declaration",
    "field_definition",
    "public_field_definition",
    "assignment_expression",
)
_JS_REQUIRE = re.compile(r"^\s*(?:(?:const|let|var)\s+[^=]+=\s*)?require\s*\(")
_TS = _Grammar(
    functions=_JS_FUNCTIONS,
    containers=_names("class_declaration", "abstract_class_declaration", "class"),
    types=_names("interface_declaration", "type_alias_declaration", "enum_declaration"),
    transparent=_names("internal_module", "module"),
    wrappers=_names("export_statement", "expression_statement", "ambient_declaration"),
    bindings=_JS_BINDINGS,
    # overload signatures directly above an implementation belong to it
    attached=_names("comment", "decorator", "function_signature"),
    imports=_names("import_statement"),
    require=_JS_REQUIRE,
)
_C_TRANSPARENT = _names(
    "preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif", "preproc_elifdef"
)
_C_BINDINGS = _names("declaration", "type_definition", "field_declaration")

_GRAMMARS: dict[str, _Grammar] = {
    "python": _Grammar(
        functions=_names("function_definition"),
        containers=_names("class_definition"),
        wrappers=_names("decorated_definition"),
        imports=_names("import_statement", "import_from_statement", "future_import_statement"),
    ),
    "javascript": _Grammar(
        functions=_JS_FUNCTIONS,
        containers=_names("class_declaration", "class"),
        wrappers=_names("export_statement", "expression_statement"),
        bindings=_JS_BINDINGS,
        attached=_names("comment", "decorator"),
        imports=_names("import_statement"),
        require=_JS_REQUIRE,
    ),
    "typescript": _TS,
    "tsx": _TS,
    "go": _Grammar(
        functions=_names("function_declaration", "method_declaration"),
        types=_names("type_declaration"),
        imports=_names("package_clause", "import_declaration"),
        needs_body=_names("function_declaration"),
    ),
    "java": _Grammar(
        functions=_names(
            "method_declaration", "constructor_declaration", "compact_constructor_declaration"
        ),
        containers=_names(
            "class_declaration",
            "interface_declaration",
            "enum_declaration",
            "record_declaration",
            "annotation_type_declaration",
        ),
        transparent=_names("enum_body_declarations"),
        attached=_names("line_comment", "block_comment"),
        imports=_names("package_declaration", "import_declaration"),
        needs_body=_names("method_declaration"),
    ),
    "rust": _Grammar(
        functions=_names("function_item"),
        containers=_names("impl_item", "trait_item", "mod_item"),
        types=_names("struct_item", "enum_item", "union_item", "type_item", "macro_definition"),
        attached=_names("line_comment", "block_comment", "attribute_item"),
        imports=_names("use_declaration", "extern_crate_declaration"),
        needs_body=_names("function_item", "mod_item"),
    ),
    "c": _Grammar(
        functions=_names("function_definition"),
        containers=_names("struct_specifier", "union_specifier"),
        types=_names("enum_specifier"),
        transparent=_C_TRANSPARENT,
        bindings=_C_BINDINGS,
        imports=_names("preproc_include"),
        needs_body=_names(
            "function_definition", "struct_specifier", "union_specifier", "enum_specifier"
        ),
    ),
    "cpp": _Grammar(
        functions=_names("function_definition"),
        containers=_names("class_specifier", "struct_specifier", "union_specifier"),
        types=_names("enum_specifier"),
        transparent=_C_TRANSPARENT | _names("namespace_definition", "linkage_specification"),
        wrappers=_names("template_declaration"),
        bindings=_C_BINDINGS,
        imports=_names("preproc_include", "using_declaration"),
        needs_body=_names(
            "function_definition",
            "class_specifier",
            "struct_specifier",
            "union_specifier",
            "enum_specifier",
        ),
    ),
    "csharp": _Grammar(
        functions=_names(
            "method_declaration",
            "constructor_declaration",
            "destructor_declaration",
            "operator_declaration",
            "conversion_operator_declaration",
        ),
        containers=_names(
            "class_declaration",
            "struct_declaration",
            "interface_declaration",
            "record_declaration",
        ),
        types=_names("enum_declaration", "delegate_declaration"),
        transparent=_names("namespace_declaration"),
        imports=_names("using_directive", "file_scoped_namespace_declaration"),
        needs_body=_names("method_declaration"),
    ),
    "ruby": _Grammar(
        functions=_names("method", "singleton_method"),
        containers=_names("class", "module"),
        transparent=_names("singleton_class"),
        require=re.compile(r"^\s*(?:require|require_relative|load)\b"),
    ),
    "php": _Grammar(
        functions=_names("function_definition", "method_declaration"),
        containers=_names(
            "class_declaration", "interface_declaration", "trait_declaration", "enum_declaration"
        ),
        transparent=_names("namespace_definition"),
        imports=_names("namespace_use_declaration", "namespace_definition"),
        needs_body=_names("method_declaration"),
        require=re.compile(r"^\s*(?:require|include)(?:_once)?\b"),
    ),
}

# Lines that say nothing alone: closing braces, `end`, `#endif`, PHP tags.
_TRIVIAL = re.compile(
    r"^\s*(?:[{}()\[\];,]+\s*(?:(?://|#|/\*).*)?|end|#\s*(?:endif|else)\b.*|<\?php|\?>)?\s*$"
)
_TEMPLATE_ARGS = re.compile(r"<[^<>]*>")


def _last_row(node: Node) -> int:
    """The 0-based row of a node's last character (a node may end at column 0 after a newline)."""
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point.row else row


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", errors="replace")


def _first_of_type(node: Node, kind: str) -> Node | None:
    """The first node of ``kind`` in ``node``'s subtree, in source order."""
    if node.type == kind:
        return node
    for child in node.named_children:
        found = _first_of_type(child, kind)
        if found is not None:
            return found
    return None


def _clean(name: str) -> str:
    """A name as a dotted symbol: `Stack<T>::pop` -> `Stack.pop`, `Shop::Cart` -> `Shop.Cart`."""
    name = " ".join(name.split())
    if "operator" not in name:
        while True:
            stripped = _TEMPLATE_ARGS.sub("", name)
            if stripped == name:
                break
            name = stripped
    return name.replace("::", ".")


def _owner(symbol: str) -> str:
    """The type a top-level symbol is qualified by: `Cart` for Go's `Cart.Add`, else ""."""
    return symbol.split(", ")[-1].rpartition(".")[0]


def _join_symbols(*symbols: str) -> str:
    names = [name for symbol in symbols for name in symbol.split(", ") if name]
    return ", ".join(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class _Definition:
    name: str  # within its parent: "add", or "Cart.add" for a Go method or `Cart::add`
    node: Node  # the definition itself, wrappers removed: its body holds the members
    start: int  # 0-based first row, with the comments, decorators and wrappers above it
    end: int  # 0-based last row
    scopes: tuple[str, ...] = ()  # signatures of the namespaces it sits in
    splittable: bool = True  # False once merged with a definition sharing its lines


@dataclass(frozen=True, slots=True)
class _Piece:
    start: int  # 0-based rows, inclusive
    end: int
    symbol: str
    scopes: tuple[str, ...]  # signature lines for the context, outermost first
    small: bool = False  # a whole top-level definition that may merge with its neighbours


class _Chunker:
    def __init__(self, path: str, text: str, language: str) -> None:
        self.path = path
        self.language = language
        self.grammar = _GRAMMARS[language]
        self.source = text.encode("utf-8")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the newline ending the last line does not start another
        self.lines = [line.removesuffix("\r") for line in lines]
        parser = get_parser(cast(SupportedLanguage, language))
        self.root = parser.parse(self.source).root_node
        self.context = path  # then the imports, once found

    def chunks(self) -> list[Chunk]:
        top_nodes = self.root.named_children
        definitions = self._collect(top_nodes, None, ())
        imports = self._imports(top_nodes)
        names = list(dict.fromkeys(_import_name(line) for line in imports))
        # One short line: the embedder reads at most 256 word pieces, and the code matters more.
        self.context = f"imports: {', '.join(names[:MAX_IMPORT_NAMES])}" if names else ""
        # Go methods and C++ `Cart::add` are defined outside their type; find its signature.
        signatures = {
            d.name: self._signature(d.node)
            for d in definitions
            if d.node.type in self.grammar.containers | self.grammar.types
        }
        pieces: list[_Piece] = []
        cursor = 0
        for d in definitions:
            pieces += self._gap(cursor, d.start - 1)
            owner = d.name.rpartition(".")[0]
            scopes = (*d.scopes, signatures[owner]) if owner in signatures else d.scopes
            pieces += self._definition(d, d.start, d.end, "", scopes, top=True)
            cursor = d.end + 1
        pieces += self._gap(cursor, len(self.lines) - 1)
        return [self._chunk(piece) for piece in self._merge(pieces)]

    # Finding definitions

    def _unwrap(self, node: Node) -> tuple[Node, bool]:
        """The node inside exports, decorators and templates; and whether it is `export default`."""
        default = False
        while node.type in self.grammar.wrappers:
            if node.type == "export_statement":
                default = default or any(child.type == "default" for child in node.children)
            inner = node.child_by_field_name("definition") or node.child_by_field_name(
                "declaration"
            )
            if inner is None:
                named = [c for c in node.named_children if c.type not in self.grammar.attached]
                if not named:
                    break
                inner = named[-1]
            node = inner
        return node, default

    def _resolve(self, node: Node) -> tuple[str, Node] | None:
        """The name and node of the definition a statement makes, if it makes one."""
        grammar = self.grammar
        node, default = self._unwrap(node)
        if node.type in grammar.bindings:
            bound = self._bound(node)
            if bound is None:
                return None
            name, node = bound
        elif node.type in grammar.functions | grammar.containers | grammar.types:
            name = self._name(node)
        else:
            return None
        if node.type in grammar.needs_body and node.child_by_field_name("body") is None:
            return None
        if not name and default:
            name = "default"
        return (_clean(name), node) if name else None

    def _bound(self, node: Node) -> tuple[str, Node] | None:
        """`const f = () => ...`, `Cart.prototype.add = function`, `typedef struct {...} cart_t`."""
        defining = self.grammar.functions | self.grammar.containers | self.grammar.types
        if node.type in ("lexical_declaration", "variable_declaration"):
            for declarator in node.named_children:
                value = declarator.child_by_field_name("value")
                if declarator.type == "variable_declarator" and value and value.type in defining:
                    return _text(declarator.child_by_field_name("name")), value
            return None
        if node.type in ("field_definition", "public_field_definition"):
            value = node.child_by_field_name("value")
            key = node.child_by_field_name("name") or node.child_by_field_name("property")
            return (_text(key), value) if value is not None and value.type in defining else None
        if node.type == "assignment_expression":
            value = node.child_by_field_name("right")
            if value is None or value.type not in defining:
                return None
            target = _text(node.child_by_field_name("left"))
            return target.replace(".prototype.", ".").removeprefix("this."), value
        # C and C++: a declaration whose type is a struct, union, class or enum with a body
        spec = node.child_by_field_name("type")
        if spec is None or spec.type not in defining or spec.child_by_field_name("body") is None:
            return None
        declared = node.child_by_field_name("declarator")
        if node.type == "type_definition" and declared is not None:
            return _text(declared), spec
        return _text(spec.child_by_field_name("name")) or _text(declared), spec

    def _name(self, node: Node) -> str:
        kind = node.type
        if self.language == "go" and kind == "method_declaration":
            receiver = node.child_by_field_name("receiver")
            owner = _first_of_type(receiver, "type_identifier") if receiver else None
            name = _text(node.child_by_field_name("name"))
            return f"{_text(owner)}.{name}" if owner is not None else name
        if self.language == "go" and kind == "type_declaration":
            specs = [_text(spec.child_by_field_name("name")) for spec in node.named_children]
            return ", ".join(name for name in specs if name)
        if kind == "impl_item":
            implemented = node.child_by_field_name("type")
            if implemented is None:
                return ""
            owner = _first_of_type(implemented, "type_identifier")
            return _text(owner or implemented)
        if kind == "function_definition" and self.language in ("c", "cpp"):
            declarator = node.child_by_field_name("declarator")
            while declarator is not None and declarator.type in (
                "function_declarator",
                "pointer_declarator",
                "reference_declarator",
                "parenthesized_declarator",
            ):
                inner = declarator.child_by_field_name("declarator")
                if inner is None:
                    inner = next(iter(declarator.named_children), None)
                declarator = inner
            return _text(declarator)
        return _text(node.child_by_field_name("name"))

    def _scope_children(self, node: Node) -> tuple[list[Node], Node | None] | None:
        """A transparent scope's statements, and its signature holder (None for `#ifdef`)."""
        node, _ = self._unwrap(node)
        if node.type not in self.grammar.transparent:
            return None
        body = node.child_by_field_name("body")
        if body is not None:
            return body.named_children, node
        if node.type.startswith("preproc_") or node.type == "enum_body_declarations":
            return node.named_children, None
        return [], None  # `namespace App;`: a statement, not a scope

    def _collect(
        self, nodes: Sequence[Node], before: Node | None, scopes: tuple[str, ...]
    ) -> list[_Definition]:
        """The definitions among sibling statements, in order, looking into namespaces.

        ``before`` is the node just before the block holding ``nodes``: Python and Ruby put a
        comment above a class's first method outside the method's block.
        """
        leading: list[Node] = []
        if before is not None and before.type in self.grammar.attached:
            earlier = before.prev_named_sibling
            leading = [earlier, before] if earlier is not None else [before]
        sequence = [*leading, *nodes]
        found: list[_Definition] = []
        for index in range(len(leading), len(sequence)):
            node = sequence[index]
            scope = self._scope_children(node)
            if scope is not None:
                children, holder = scope
                inner_scopes = scopes if holder is None else (*scopes, self._signature(holder))
                inside = self._collect(children, None, inner_scopes)
                if inside and holder is not None:
                    # `namespace Shop {` or `class << self` right above a definition opens it
                    head = self._attached_start(sequence, index)
                    between = self.lines[node.start_point.row + 1 : inside[0].start]
                    if all(_TRIVIAL.match(line) for line in between):
                        inside[0] = replace(inside[0], start=head)
                found += inside
                continue
            resolved = self._resolve(node)
            if resolved is None:
                continue
            name, definition = resolved
            start = self._attached_start(sequence, index)
            found.append(_Definition(name, definition, start, _last_row(node), scopes))
        return self._fold(found)

    def _attached_start(self, sequence: Sequence[Node], index: int) -> int:
        """The first row of a definition with the comments and attributes right above it."""
        start = sequence[index].start_point.row
        for j in range(index - 1, -1, -1):
            previous = sequence[j]
            kind = self._unwrap(previous)[0].type  # an exported overload signature
            if kind not in self.grammar.attached or _last_row(previous) < start - 1:
                break
            if j > 0 and _last_row(sequence[j - 1]) == previous.start_point.row:
                break  # a comment after code on its line belongs to that code
            start = previous.start_point.row
        return start

    @staticmethod
    def _fold(definitions: list[_Definition]) -> list[_Definition]:
        """Clip attached comments that overlap; definitions sharing a line become one."""
        folded: list[_Definition] = []
        for d in definitions:
            if folded and d.start <= folded[-1].end:
                previous = folded[-1]
                if d.node.start_point.row > previous.end:
                    d = _Definition(d.name, d.node, previous.end + 1, d.end, d.scopes)
                else:
                    folded[-1] = _Definition(
                        _join_symbols(previous.name, d.name),
                        previous.node,
                        previous.start,
                        max(previous.end, d.end),
                        previous.scopes,
                        splittable=False,
                    )
                    continue
            folded.append(d)
        return folded

    def _signature(self, node: Node) -> str:
        """A definition's header lines: `class Big(Base):`, `impl Foo for Bar {`."""
        first = node.start_point.row
        body = node.child_by_field_name("body")
        last = first
        if body is not None:
            for child in node.children:
                if child.start_byte >= body.start_byte:
                    break
                if child.type not in self.grammar.attached:
                    last = max(last, _last_row(child))
            if self.source[body.start_byte : body.start_byte + 1] == b"{":
                last = max(last, body.start_point.row)
        last = min(last, first + MAX_SIGNATURE_LINES - 1, len(self.lines) - 1)
        return "\n".join(line.strip() for line in self.lines[first : last + 1])

    def _imports(self, nodes: Sequence[Node]) -> list[str]:
        grammar = self.grammar
        found: list[str] = []
        for node in nodes:
            if len(found) >= MAX_IMPORT_LINES:
                break
            scope = self._scope_children(node)
            if scope is not None and scope[0]:
                found += self._imports(scope[0])
                continue
            first_line = self.lines[node.start_point.row] if self.lines else ""
            if node.type in grammar.imports or (
                grammar.require is not None and grammar.require.match(first_line)
            ):
                rows = self.lines[node.start_point.row : _last_row(node) + 1]
                found += [line.strip() for line in rows if line.strip()]
        return found

    # Cutting pieces

    def _definition(
        self,
        d: _Definition,
        start: int,
        end: int,
        prefix: str,
        scopes: tuple[str, ...],
        *,
        top: bool = False,
    ) -> list[_Piece]:
        symbol = prefix + d.name
        body = d.node.child_by_field_name("body")
        if (
            d.splittable
            and d.node.type in self.grammar.containers
            and body is not None
            and end - start + 1 > MAX_CODE_LINES
        ):
            members = [
                m
                for m in self._collect(body.named_children, body.prev_named_sibling, ())
                if start < m.start and m.end <= end
            ]
            if members:
                pieces = self._windows(start, members[0].start - 1, symbol, scopes)
                inner = (*scopes, self._signature(d.node))
                for i, member in enumerate(members):
                    # Class-level lines after a member belong to it, up to the next member.
                    member_end = members[i + 1].start - 1 if i + 1 < len(members) else end
                    pieces += self._definition(
                        member, member.start, member_end, f"{symbol}.", (*inner, *member.scopes)
                    )
                return pieces
        pieces = self._windows(start, end, symbol, scopes)
        if top and len(pieces) == 1 and end - start + 1 <= SMALL_DEFINITION_LINES:
            only = pieces[0]
            pieces = [_Piece(only.start, only.end, only.symbol, only.scopes, small=True)]
        return pieces

    def _gap(self, first: int, last: int) -> list[_Piece]:
        """Code between definitions, by paragraph; braces and `#endif` alone are dropped."""
        if last < first:
            return []
        pieces: list[_Piece] = []
        for a, b in split_lines(self.lines[first : last + 1], MERGE_MAX_CHARS):
            rows = self.lines[first + a : first + b]
            if all(_TRIVIAL.match(line) for line in rows):
                continue
            pieces += self._windows(first + a, first + b - 1, "", ())
        return pieces

    def _windows(self, start: int, end: int, symbol: str, scopes: tuple[str, ...]) -> list[_Piece]:
        """Even windows of at most MAX_CODE_LINES covering start..end; blank ones are dropped."""
        size = end - start + 1
        if size <= 0:
            return []
        count = -(-size // MAX_CODE_LINES)
        step = -(-size // count)
        return [
            _Piece(a, min(a + step - 1, end), symbol, scopes)
            for a in range(start, end + 1, step)
            if any(line.strip() for line in self.lines[a : min(a + step, end + 1)])
        ]

    def _merge(self, pieces: list[_Piece]) -> list[_Piece]:
        merged: list[_Piece] = []
        for piece in pieces:
            last = merged[-1] if merged else None
            if (
                last is not None
                and last.small
                and piece.small
                and piece.scopes == last.scopes  # neighbours in one namespace, of one type
                and _owner(piece.symbol) == _owner(last.symbol)
                and piece.end - last.start + 1 <= MAX_CODE_LINES
                and self._chars(last.start, piece.end) <= MERGE_MAX_CHARS
            ):
                symbol = _join_symbols(last.symbol, piece.symbol)
                merged[-1] = _Piece(last.start, piece.end, symbol, last.scopes, small=True)
            else:
                merged.append(piece)
        return merged

    def _chars(self, start: int, end: int) -> int:
        return sum(len(line) + 1 for line in self.lines[start : end + 1]) - 1

    def _chunk(self, piece: _Piece) -> Chunk:
        return Chunk(
            text="\n".join(self.lines[piece.start : piece.end + 1]),
            path=self.path,
            kind="code",
            line_start=piece.start + 1,
            line_end=piece.end + 1,
            symbol=piece.symbol,
            language=self.language,
            context="\n".join(
                line
                for line in (f"{self.path} {piece.symbol}".strip(), self.context, *piece.scopes)
                if line
            ),
        )


_QUOTED_MODULE = re.compile(r"""["'<]([^"'<>]+)["'>]""")
_NAMED_MODULE = re.compile(r"\b(?:from|import|use|using|require)\s+([\w.:\\/@-]+)")


def _import_name(line: str) -> str:
    """What an import line brings in, in a word: ``from a.b import c`` -> ``a.b``."""
    match = _QUOTED_MODULE.search(line) or _NAMED_MODULE.search(line)
    return match.group(1).strip(";") if match else line.strip()


# A `.h` file with classes, namespaces or templates is a C++ header.
_CPP_HEADER = re.compile(
    r"^\s*(?:(?:class|namespace|template)\b|(?:public|private|protected)\s*:)", re.MULTILINE
)


def language_for(path: str, text: str = "") -> str | None:
    """The tree-sitter language of a path, from its suffix; None when there is no parser."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix == ".h" and _CPP_HEADER.search(text):
        return "cpp"
    return LANGUAGES.get(suffix)


def _check_language(language: str) -> None:
    if language not in _GRAMMARS:
        raise FileRejected(f"no code parser for {language!r}; known: {', '.join(_GRAMMARS)}")


def chunk_code(path: str, text: str, language: str) -> list[Chunk]:
    """Source code in a known language (a value of LANGUAGES) as symbol-aligned chunks."""
    _check_language(language)
    return _Chunker(path, text, language).chunks()


def read_code(path: str, text: str, language: str | None = None) -> ParsedDocument:
    """A source file as a code document; the language comes from the suffix unless given."""
    if language is None:
        language = language_for(path, text)
        if language is None:
            suffix = PurePosixPath(path).suffix.lower() or "no extension"
            raise FileRejected(
                f"no code parser for {suffix} files; supported: {', '.join(sorted(LANGUAGES))}"
            )
    _check_language(language)
    chunker = _Chunker(path, text, language)
    chunks = chunker.chunks()
    # Tree-sitter recovers from syntax errors; the flag says some chunks may be cut oddly.
    meta = {"language": language, "parse_errors": chunker.root.has_error}
    return ParsedDocument(kind="code", chunks=chunks, meta=meta)


def chunk_python(path: str, text: str) -> list[Chunk]:
    """Python: one chunk per function or class, large classes split by method."""
    return chunk_code(path, text, "python")
