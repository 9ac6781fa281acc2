"""Inert pickle trees: read a pickle into plain nodes without calling anything, write it back.

:func:`read_pickle_tree` interprets the pickle opcodes itself (via ``pickletools.genops``)
instead of running ``pickle.Unpickler``: a global becomes a :class:`Global` node (checked
against an allow-list), ``REDUCE``/``NEWOBJ`` become :class:`Call` nodes that record the
callable and its arguments, and ``BUILD``/``SETITEMS``/``APPENDS`` applied to such a node are
recorded on it. Nothing named in the file is imported or called, so reading is safe for any
input; the allow-list only decides which globals may appear at all.

:func:`write_pickle_tree` emits such a tree as a protocol-4 pickle the way CPython's pickler
lays out the same objects (memo for shared nodes, ``save_reduce`` order: callable, args,
``REDUCE``/``NEWOBJ``, list items, dict items, ``BUILD``), so an unchanged tree loads into the
same objects as the original file. Plain ``dict``/``list``/``tuple``/``set``/``frozenset``,
``str``/``bytes``/``int``/``float``/``bool``/``None`` stand for themselves.

Reading costs memory in proportion to the file (the memo is a dict, every node comes from an
opcode), and a tree that refers to itself or nests deeper than :data:`eg3d.bounds.MAX_NESTING`
(an official snapshot nests 37 deep) is refused, so walking or writing it never recurses
without bound.
"""
from __future__ import annotations

import _compat_pickle
import io
import os
import pickletools
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterator, Optional, Union

from eg3d.bounds import MAX_NESTING
from eg3d.network_pkl import CheckpointFormatError, UnsafeCheckpointError

__all__ = [
    "Call",
    "Global",
    "NO_STATE",
    "dumps_pickle_tree",
    "iter_nodes",
    "read_pickle_tree",
    "tree_globals",
    "write_pickle_tree",
]


class _NoState:
    def __repr__(self) -> str:
        return "NO_STATE"


#: ``Call.state`` when the pickle had no ``BUILD`` for the object.
NO_STATE: Any = _NoState()


@dataclass(eq=False)
class Global:
    """A global reference (``module.name``); compared and hashed by identity."""

    module: str
    name: str

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class Call:
    """``func(*args)`` (``REDUCE``) or ``func.__new__(func, *args)`` (``NEWOBJ``), never performed.

    ``listitems``/``dictitems`` record ``APPENDS``/``SETITEMS`` applied to the result and
    ``state`` the ``BUILD`` argument (:data:`NO_STATE` when there was none).
    """

    func: Global
    args: tuple
    newobj: bool = False
    state: Any = NO_STATE
    listitems: list = field(default_factory=list)
    dictitems: list = field(default_factory=list)

    @property
    def qualname(self) -> str:
        return self.func.qualname


# ------------------------------------------------------------------------------ reading


class _TreeReader:
    """A tiny pickle virtual machine that builds nodes instead of objects."""

    def __init__(self, allowed: Callable[[str], bool], source: str) -> None:
        self.allowed, self.source = allowed, source
        self.stack: list = []
        self.metastack: list = []
        self.memo: dict = {}
        self.globals: dict[str, Global] = {}
        self.proto = 0

    def fail(self, message: str) -> CheckpointFormatError:
        return CheckpointFormatError(f"{self.source}: {message}")

    def pop_mark(self) -> list:
        if not self.metastack:
            raise self.fail("pickle pops a MARK that was never set")
        items, self.stack = self.stack, self.metastack.pop()
        return items

    def push(self, value: Any) -> None:
        self.stack.append(value)

    def pop(self) -> Any:
        if not self.stack:
            raise self.fail("pickle stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise self.fail("pickle stack underflow")
        return self.stack[-1]

    def global_(self, module: Any, name: Any) -> Global:
        if not isinstance(module, str) or not isinstance(name, str):
            raise self.fail("STACK_GLOBAL operands are not strings")
        if self.proto < 3:  # Python 2 names, mapped exactly as pickle.Unpickler(fix_imports=True) does
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        qualname = f"{module}.{name}"
        if not self.allowed(qualname):
            raise UnsafeCheckpointError(
                f"{self.source}: refusing global '{qualname}' (not on the allow-list; nothing was executed)")
        if qualname not in self.globals:
            self.globals[qualname] = Global(module, name)
        return self.globals[qualname]

    def setitems(self, target: Any, items: list) -> None:
        if len(items) % 2:
            raise self.fail("SETITEMS with an odd number of items")
        pairs = list(zip(items[::2], items[1::2]))
        if type(target) is dict:
            try:
                for k, v in pairs:
                    target[k] = v
            except TypeError as exc:
                raise self.fail(f"unhashable dict key ({exc})") from None
        elif isinstance(target, Call):
            target.dictitems.extend(pairs)
        else:
            raise self.fail(f"SETITEMS on a {type(target).__name__}")

    def appends(self, target: Any, items: list) -> None:
        if type(target) is list:
            target.extend(items)
        elif isinstance(target, Call):
            target.listitems.extend(items)
        else:
            raise self.fail(f"APPENDS on a {type(target).__name__}")

    def step(self, name: str, arg: Any) -> None:  # noqa: C901 - one branch per opcode
        push = self.push
        if name in _LITERALS:
            push(arg)
        elif name == "NONE":
            push(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            push(name == "NEWTRUE")
        elif name == "MARK":
            self.metastack.append(self.stack)
            self.stack = []
        elif name == "POP":
            if self.stack:
                self.stack.pop()
            else:
                self.pop_mark()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            push(self.top())
        elif name == "EMPTY_TUPLE":
            push(())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            if len(self.stack) < n:
                raise self.fail("pickle stack underflow")
            items = tuple(self.stack[-n:])
            del self.stack[-n:]
            push(items)
        elif name == "TUPLE":
            push(tuple(self.pop_mark()))
        elif name == "EMPTY_LIST":
            push([])
        elif name == "LIST":
            push(list(self.pop_mark()))
        elif name == "APPEND":
            value = self.pop()
            self.appends(self.top(), [value])
        elif name == "APPENDS":
            items = self.pop_mark()
            self.appends(self.top(), items)
        elif name == "EMPTY_DICT":
            push({})
        elif name == "DICT":
            d: dict = {}
            self.setitems(d, self.pop_mark())
            push(d)
        elif name == "SETITEM":
            value = self.pop()
            key = self.pop()
            self.setitems(self.top(), [key, value])
        elif name == "SETITEMS":
            items = self.pop_mark()
            self.setitems(self.top(), items)
        elif name == "EMPTY_SET":
            push(set())
        elif name == "ADDITEMS":
            items = self.pop_mark()
            target = self.top()
            if type(target) is not set:
                raise self.fail(f"ADDITEMS on a {type(target).__name__}")
            try:
                target.update(items)
            except TypeError as exc:
                raise self.fail(f"unhashable set item ({exc})") from None
        elif name == "FROZENSET":
            try:
                push(frozenset(self.pop_mark()))
            except TypeError as exc:
                raise self.fail(f"unhashable frozenset item ({exc})") from None
        elif name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            push(self.global_(module, attr))
        elif name == "STACK_GLOBAL":
            attr = self.pop()
            push(self.global_(self.pop(), attr))
        elif name in ("REDUCE", "NEWOBJ"):
            args = self.pop()
            func = self.pop()
            if not isinstance(func, Global) or not isinstance(args, tuple):
                raise self.fail(f"{name} needs a global and an argument tuple, got {type(func).__name__} and {type(args).__name__}")
            push(Call(func, args, newobj=name == "NEWOBJ"))
        elif name == "BUILD":
            state = self.pop()
            target = self.top()
            if not isinstance(target, Call) or target.state is not NO_STATE:
                raise self.fail("BUILD applied to something other than a fresh object")
            target.state = state
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[arg] = self.top()
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.top()
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if arg not in self.memo:
                raise self.fail(f"memo key {arg!r} was never stored")
            push(self.memo[arg])
        elif name == "PROTO":
            self.proto = arg
        elif name == "FRAME":
            pass
        else:
            raise self.fail(f"unsupported pickle opcode {name}")

    def run(self, f: BinaryIO) -> Any:
        try:
            for opcode, arg, _ in pickletools.genops(f):
                if opcode.name == "STOP":
                    break
                self.step(opcode.name, arg)
        except (UnsafeCheckpointError, CheckpointFormatError):
            raise
        except ValueError as exc:  # pickletools: truncated stream, unknown opcode, ...
            text = " ".join(str(exc).split())
            raise self.fail(f"truncated or not a pickle ({text[:200]})") from exc
        if self.metastack or len(self.stack) != 1:
            raise self.fail("pickle ended with an unbalanced stack")
        _check_height(self.stack[0], self.fail)
        return self.stack[0]


#: Opcodes whose ``genops`` argument is the value itself.
_LITERALS = frozenset({
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
    "SHORT_BINBYTES", "BINBYTES", "BINBYTES8",
})


def read_pickle_tree(
    path_or_file: Union[str, "os.PathLike[str]", BinaryIO],
    *,
    allowed: Callable[[str], bool],
    source: Optional[str] = None,
) -> Any:
    """Parse one pickle into a node tree; raises ``UnsafeCheckpointError`` for a global that
    ``allowed(qualname)`` rejects and ``CheckpointFormatError`` for malformed input."""
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as f:
            return read_pickle_tree(f, allowed=allowed, source=source or os.fspath(path_or_file))
    return _TreeReader(allowed, source or "<file object>").run(path_or_file)


# ------------------------------------------------------------------------------- walking


def _children(obj: Any) -> Iterator[Any]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield v
    elif isinstance(obj, (list, tuple, set, frozenset)):
        yield from obj
    elif isinstance(obj, Call):
        yield obj.func
        yield obj.args
        yield from obj.listitems
        for k, v in obj.dictitems:
            yield k
            yield v
        if obj.state is not NO_STATE:
            yield obj.state


def iter_nodes(root: Any) -> Iterator[Any]:
    """Every node of the tree once (shared nodes once), depth first."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if isinstance(obj, (dict, list, tuple, set, frozenset, Call, Global)):
            if id(obj) in seen:
                continue
            seen.add(id(obj))
        yield obj
        stack.extend(reversed(list(_children(obj))))


_NODES = (dict, list, tuple, set, frozenset, Call, Global)


def _check_height(root: Any, fail: Callable[[str], Exception]) -> None:
    """Refuse a tree that contains itself or nests deeper than MAX_NESTING (iterative, each node once)."""
    height: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list = [(root, False)]
    while stack:
        node, finished = stack.pop()
        if not isinstance(node, _NODES):
            continue
        key = id(node)
        if finished:
            on_path.discard(key)
            height[key] = 1 + max((height.get(id(c), 0) for c in _children(node)), default=0)
            if height[key] > MAX_NESTING:
                raise fail(f"pickle nests deeper than {MAX_NESTING} levels")
        elif key not in height:
            if key in on_path:
                raise fail("pickle holds an object that contains itself")
            on_path.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node))


def tree_globals(root: Any) -> set[str]:
    """Qualified names of all globals referenced by the tree."""
    return {node.qualname for node in iter_nodes(root) if isinstance(node, Global)}


# ------------------------------------------------------------------------------ writing

_FRAME_TARGET = 64 * 1024
_BATCH = 1000
#: opcode name -> its byte, from pickletools' table.
_OP: dict[str, bytes] = {op.name: op.code.encode("latin-1") for op in pickletools.opcodes}


def _encode_long(x: int) -> bytes:
    """Two's-complement little-endian bytes as pickle's LONG1/LONG4 expect."""
    if x == 0:
        return b""
    nbytes = (x.bit_length() >> 3) + 1
    data = x.to_bytes(nbytes, byteorder="little", signed=True)
    if x < 0 and nbytes > 1 and data[-1] == 0xFF and (data[-2] & 0x80):
        data = data[:-1]
    return data


class _TreeWriter:
    """Emits protocol-4 opcodes for a node tree, framed like CPython's pickler."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.frame = bytearray()
        self.memo: dict[int, int] = {}

    # -- output
    def write(self, data: bytes) -> None:
        self.frame += data

    def commit(self, force: bool = False) -> None:
        if self.frame and (force or len(self.frame) >= _FRAME_TARGET):
            if len(self.frame) >= 4:
                self.file.write(_OP["FRAME"] + struct.pack("<Q", len(self.frame)))
            self.file.write(self.frame)
            self.frame = bytearray()

    def write_large(self, header: bytes, payload: bytes) -> None:
        self.commit(force=True)
        self.file.write(header)
        self.file.write(payload)

    # -- memo
    def memoize(self, obj: Any) -> None:
        self.memo[id(obj)] = len(self.memo)
        self.write(_OP["MEMOIZE"])

    def get(self, index: int) -> bytes:
        if index < 256:
            return _OP["BINGET"] + bytes([index])
        return _OP["LONG_BINGET"] + struct.pack("<I", index)

    # -- entry point
    def dump(self, obj: Any) -> None:
        self.file.write(_OP["PROTO"] + bytes([4]))
        self.save(obj)
        self.write(_OP["STOP"])
        self.commit(force=True)

    def save(self, obj: Any) -> None:  # noqa: C901 - one branch per type
        self.commit()
        if obj is None:
            self.write(_OP["NONE"])
        elif obj is True or obj is False:
            self.write(_OP["NEWTRUE" if obj else "NEWFALSE"])
        elif type(obj) is int:
            self.save_int(obj)
        elif type(obj) is float:
            self.write(_OP["BINFLOAT"] + struct.pack(">d", obj))
        elif id(obj) in self.memo:
            self.write(self.get(self.memo[id(obj)]))
        elif type(obj) is str:
            self.save_sized(obj.encode("utf-8", "surrogatepass"), "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8")
            self.memoize(obj)
        elif type(obj) is bytes:
            self.save_sized(obj, "SHORT_BINBYTES", "BINBYTES", "BINBYTES8")
            self.memoize(obj)
        elif type(obj) is tuple:
            self.save_tuple(obj)
        elif type(obj) is list:
            self.write(_OP["EMPTY_LIST"])
            self.memoize(obj)
            self.batch(obj, "APPEND", "APPENDS")
        elif type(obj) is dict:
            self.write(_OP["EMPTY_DICT"])
            self.memoize(obj)
            self.batch_items(list(obj.items()))
        elif type(obj) is set:
            self.write(_OP["EMPTY_SET"])
            self.memoize(obj)
            self.batch(list(obj), None, "ADDITEMS")
        elif type(obj) is frozenset:
            self.write(_OP["MARK"])
            for item in obj:
                self.save(item)
            if id(obj) in self.memo:
                self.write(_OP["POP_MARK"] + self.get(self.memo[id(obj)]))
                return
            self.write(_OP["FROZENSET"])
            self.memoize(obj)
        elif isinstance(obj, Global):
            self.save(obj.module)
            self.save(obj.name)
            self.write(_OP["STACK_GLOBAL"])
            self.memoize(obj)
        elif isinstance(obj, Call):
            self.save_call(obj)
        else:
            raise TypeError(f"cannot write a {type(obj).__name__} into a pickle tree")

    def save_int(self, x: int) -> None:
        if 0 <= x <= 0xFF:
            self.write(_OP["BININT1"] + bytes([x]))
        elif 0 <= x <= 0xFFFF:
            self.write(_OP["BININT2"] + struct.pack("<H", x))
        elif -0x80000000 <= x <= 0x7FFFFFFF:
            self.write(_OP["BININT"] + struct.pack("<i", x))
        else:
            data = _encode_long(x)
            if len(data) < 256:
                self.write(_OP["LONG1"] + bytes([len(data)]) + data)
            else:
                self.write(_OP["LONG4"] + struct.pack("<i", len(data)) + data)

    def save_sized(self, data: bytes, short: str, medium: str, long: str) -> None:
        n = len(data)
        if n < 256:
            header = _OP[short] + bytes([n])
        elif n <= 0xFFFFFFFF:
            header = _OP[medium] + struct.pack("<I", n)
        else:
            header = _OP[long] + struct.pack("<Q", n)
        if n >= _FRAME_TARGET:
            self.write_large(header, data)
        else:
            self.write(header + data)

    def save_tuple(self, obj: tuple) -> None:
        if not obj:
            self.write(_OP["EMPTY_TUPLE"])
            return
        small = len(obj) <= 3
        if not small:
            self.write(_OP["MARK"])
        for item in obj:
            self.save(item)
        if id(obj) in self.memo:  # the tuple was reached through its own items
            pops = _OP["POP"] * len(obj) if small else _OP["POP_MARK"]
            self.write(pops + self.get(self.memo[id(obj)]))
            return
        self.write(_OP[("TUPLE1", "TUPLE2", "TUPLE3")[len(obj) - 1]] if small else _OP["TUPLE"])
        self.memoize(obj)

    def save_call(self, obj: Call) -> None:
        self.save(obj.func)
        self.save(tuple(obj.args))
        self.write(_OP["NEWOBJ" if obj.newobj else "REDUCE"])
        if id(obj) in self.memo:  # recursive: built while saving its own arguments
            self.write(_OP["POP"] + self.get(self.memo[id(obj)]))
        else:
            self.memoize(obj)
        self.batch(obj.listitems, "APPEND", "APPENDS")
        self.batch_items(obj.dictitems)
        if obj.state is not NO_STATE:
            self.save(obj.state)
            self.write(_OP["BUILD"])

    def batch(self, items: list, single: Optional[str], many: str) -> None:
        for start in range(0, len(items), _BATCH):
            chunk = items[start:start + _BATCH]
            if len(chunk) == 1 and single is not None:
                self.save(chunk[0])
                self.write(_OP[single])
                continue
            self.write(_OP["MARK"])
            for item in chunk:
                self.save(item)
            self.write(_OP[many])

    def batch_items(self, pairs: list) -> None:
        for start in range(0, len(pairs), _BATCH):
            chunk = pairs[start:start + _BATCH]
            if len(chunk) == 1:
                self.save(chunk[0][0])
                self.save(chunk[0][1])
                self.write(_OP["SETITEM"])
                continue
            self.write(_OP["MARK"])
            for key, value in chunk:
                self.save(key)
                self.save(value)
            self.write(_OP["SETITEMS"])


def write_pickle_tree(root: Any, file: BinaryIO) -> None:
    """Write ``root`` as a protocol-4 pickle to the binary ``file``."""
    _TreeWriter(file).dump(root)


def dumps_pickle_tree(root: Any) -> bytes:
    """:func:`write_pickle_tree` into bytes (for small trees and tests)."""
    buf = io.BytesIO()
    write_pickle_tree(root, buf)
    return buf.getvalue()
