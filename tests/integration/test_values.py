"""The typed value encoding (clients/python/pyrunner/values.py, docs/values.md).

Pure Python: round trips of generated values, the limits, hostile input."""
import ast
import builtins
import collections
import datetime as dt
import decimal
import fractions
import json
import math
import os
import random
import subprocess
import sys
import time
import uuid
import zoneinfo

import numpy as np
import pandas as pd
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))

from pyrunner import values as V  # noqa: E402
from pyrunner.values import RemoteRepr, ValueDecodeError, ValueEncodeError, decode, encode  # noqa: E402

MODULE = os.path.join(REPO, "clients", "python", "pyrunner", "values.py")
ZONES = ["Europe/Paris", "America/New_York", "Asia/Kolkata", "UTC"]


# ---- equality that sees what == hides ----

def same_tz(a, b):
    return type(a) is type(b) and repr(a) == repr(b)


def same_index(a, b):
    return (type(a) is type(b) and a.equals(b) and a.dtype == b.dtype
            and [same(x, y) for x, y in zip(a.names, b.names)] == [True] * a.nlevels)


def same(a, b):
    if type(a) is not type(b):
        return False
    if a is pd.NaT or a is pd.NA:
        return a is b
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(same(ka, kb) and same(va, vb)
                                        for (ka, va), (kb, vb) in zip(a.items(), b.items()))
    if isinstance(a, (dt.datetime, dt.time)):
        return a == b and repr(a) == repr(b) and same_tz(a.tzinfo, b.tzinfo)
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.kind == "O":
            return all(same(x, y) for x, y in zip(a.ravel().tolist(), b.ravel().tolist()))
        return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and np.array(a).tobytes() == np.array(b).tobytes()
    if isinstance(a, pd.DataFrame):
        return (a.equals(b) and list(a.dtypes) == list(b.dtypes)
                and same_index(a.index, b.index) and same_index(a.columns, b.columns))
    if isinstance(a, pd.Series):
        return a.equals(b) and a.dtype == b.dtype and same(a.name, b.name) and same_index(a.index, b.index)
    if isinstance(a, pd.Index):
        return same_index(a, b)
    if isinstance(a, pd.Timestamp):
        return a == b and str(a.tz) == str(b.tz)
    return a == b


# ---- a deterministic generator of values of every covered type ----

class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def text(self):
        r = self.r
        alphabet = "ab$ \x00\t\n\"\\é€😀\ud800\udfff"
        return "".join(r.choice(alphabet) for _ in range(r.randrange(0, 12)))

    def int_(self):
        r = self.r
        return r.choice([0, -1, 2 ** 53 - 1, 2 ** 53, -2 ** 53, 2 ** 63, -2 ** 64 - 1,
                         r.randrange(-10 ** 6, 10 ** 6), r.getrandbits(200) - 2 ** 199,
                         r.getrandbits(20000), -(10 ** 4000)])

    def float_(self):
        r = self.r
        return r.choice([0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308,
                         0.1, 1.0, r.uniform(-1e6, 1e6), r.random() * 10 ** r.randrange(-300, 300)])

    def datetime_(self):
        r = self.r
        d = dt.datetime(r.randrange(1, 9999), r.randrange(1, 13), r.randrange(1, 29), r.randrange(24),
                        r.randrange(60), r.randrange(60), r.choice([0, r.randrange(10 ** 6)]))
        kind = r.randrange(4)
        if kind == 1:
            return d.replace(tzinfo=dt.timezone.utc)
        if kind == 2:
            off = dt.timedelta(minutes=r.randrange(-23 * 60, 23 * 60), microseconds=r.choice([0, 7]))
            name = r.choice([None, "Zone", "é"])
            return d.replace(tzinfo=dt.timezone(off, name) if name else dt.timezone(off))
        if kind == 3:
            return d.replace(year=r.randrange(1900, 2100), tzinfo=zoneinfo.ZoneInfo(r.choice(ZONES)),
                             fold=r.randrange(2))
        return d

    def scalar(self):
        r = self.r
        k = r.randrange(22)
        if k == 0:
            return r.choice([None, True, False])
        if k == 1:
            return self.int_()
        if k == 2:
            return self.float_()
        if k == 3:
            return complex(self.float_(), self.float_())
        if k == 4:
            return self.text()
        if k == 5:
            return bytes(r.getrandbits(8) for _ in range(r.randrange(10)))
        if k == 6:
            return bytearray(r.getrandbits(8) for _ in range(r.randrange(10)))
        if k == 7:
            return decimal.Decimal(r.choice(["NaN", "-Infinity", "sNaN", "-0", "1.50", "-1.2E+400",
                                             str(r.uniform(-1e9, 1e9)), "NaN12"]))
        if k == 8:
            return fractions.Fraction(r.randrange(-10 ** 30, 10 ** 30), r.randrange(1, 10 ** 20))
        if k == 9:
            return self.datetime_()
        if k == 10:
            return dt.date(r.randrange(1, 10000), r.randrange(1, 13), r.randrange(1, 29))
        if k == 11:
            t = self.datetime_()
            tz = t.tzinfo if not isinstance(t.tzinfo, zoneinfo.ZoneInfo) else zoneinfo.ZoneInfo("UTC")
            return t.time().replace(tzinfo=r.choice([None, tz]), fold=r.randrange(2))
        if k == 12:
            return dt.timedelta(days=r.randrange(-10 ** 6, 10 ** 6), seconds=r.randrange(86400),
                                microseconds=r.randrange(10 ** 6))
        if k == 13:
            return uuid.UUID(int=r.getrandbits(128))
        if k in (14, 15):
            return self.ndarray()
        if k in (16, 17):
            return self.npscalar()
        if k == 18:
            return self.frame()
        if k == 19:
            return self.series()
        if k == 20:
            return self.index()
        return r.choice([pd.Timestamp("2021-03-04 05:06:07.000000009"), pd.Timestamp("2020-01-01", tz="UTC"),
                         pd.Timestamp("2020-06-01 12:00", tz="Europe/Paris"), pd.Timedelta(days=-2, nanoseconds=3),
                         pd.NaT, pd.NA])

    NUM = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64", "longdouble", "complex64", "complex128",
           "datetime64[ns]", "datetime64[D]", "timedelta64[s]"]

    def ndarray(self):
        r = self.r
        shape = tuple(r.randrange(0, 4) for _ in range(r.randrange(0, 4)))
        n = math.prod(shape)
        kind = r.randrange(5)
        if kind == 0:
            return np.array([self.scalar_simple() for _ in range(n)] + [None], dtype=object)[:-1].reshape(shape)
        if kind == 1:
            return np.array(["x" * r.randrange(4) + "é" for _ in range(n)], dtype="U5").reshape(shape)
        if kind == 2:
            return np.array([b"ab"[:r.randrange(3)] for _ in range(n)], dtype="S3").reshape(shape)
        dtype = np.dtype(r.choice(self.NUM))
        raw = bytes(r.getrandbits(8) for _ in range(n * dtype.itemsize))
        a = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        if dtype.kind == "b":
            a = a.view("u1").astype(bool)
        if kind == 3 and a.ndim:
            a = a[::-1]  # not contiguous
        if kind == 4 and dtype.itemsize > 1 and dtype.kind in "iufc":
            a = a.astype(dtype.newbyteorder(">"))  # decodes to native order
            return a.astype(a.dtype.newbyteorder("="))
        return a

    def npscalar(self):
        r = self.r
        a = self.ndarray()
        if a.size and a.dtype.kind not in "OSU":
            return a.ravel()[0]
        return r.choice([np.float64("nan"), np.float32(-0.0), np.int64(-2 ** 63), np.uint64(2 ** 64 - 1),
                         np.bool_(False), np.str_("hé"), np.bytes_(b"\x00z"), np.datetime64("NaT", "ns"),
                         np.timedelta64(5, "ms"), np.longdouble(1) / 3, np.complex64(complex(math.nan, 1))])

    def scalar_simple(self):
        r = self.r
        return r.choice([None, r.randrange(100), self.text(), self.float_(), pd.Timestamp("2020-01-01"),
                         dt.date(2020, 1, 2), (1, "a"), [1, [2]], {"k": 1}])

    def column(self, n):
        r = self.r
        k = r.randrange(11)
        if k == 0:
            return np.array([r.randrange(-100, 100) for _ in range(n)], dtype="int64")
        if k == 1:
            return np.array([r.choice([math.nan, r.random(), -0.0]) for _ in range(n)])
        if k == 2:
            return np.array([r.random() < 0.5 for _ in range(n)])
        if k == 3:
            return pd.Series([r.choice(["a", "b", None, "é", "$type"]) for _ in range(n)], dtype=object)
        if k == 4:
            return pd.to_datetime([r.choice([None, "2020-01-01", "2021-06-07 08:09:10.123456789"]) for _ in range(n)])
        if k == 5:
            return pd.Categorical([r.choice(["x", "y", None]) for _ in range(n)], ordered=r.random() < 0.5)
        if k == 6:
            return pd.date_range("2020-03-29", periods=n, freq="H", tz=r.choice(ZONES))
        if k == 7:
            return pd.array([r.choice([None, 1, -5]) for _ in range(n)], dtype="Int64")
        if k == 8:
            return pd.array([r.choice([None, "s", "t"]) for _ in range(n)], dtype="string")
        if k == 9:
            return pd.to_timedelta([r.randrange(10 ** 12) for _ in range(n)])
        return pd.Series([self.scalar_simple() for _ in range(n)], dtype=object)

    def index(self, n=None):
        r = self.r
        n = r.randrange(0, 5) if n is None else n
        name = r.choice([None, "idx", 3, ("a", 1)])
        k = r.randrange(6)
        if k == 0:
            start, step = r.randrange(-5, 5), r.choice([1, 2, -3])
            return pd.RangeIndex(start, start + step * n, step, name=name)
        if k == 1:
            return pd.Index([r.randrange(100) for _ in range(n)], name=name)
        if k == 2:
            return pd.Index(["k%d" % r.randrange(9) for _ in range(n)], name=name)
        if k == 3:
            return pd.date_range("2021-01-01", periods=n, freq="D", name=name)
        if k == 4:
            return pd.CategoricalIndex([r.choice("pq") for _ in range(n)], name=name)
        return pd.MultiIndex.from_arrays([[r.randrange(3) for _ in range(n)], [r.choice("ab") for _ in range(n)]],
                                         names=[name, "second"])

    def series(self):
        n = self.r.randrange(0, 6)
        return pd.Series(self.column(n), index=self.index(n), name=self.r.choice([None, "s", 0]))

    def frame(self):
        r = self.r
        n, ncol = r.randrange(0, 6), r.randrange(0, 5)
        df = pd.DataFrame({i: pd.Series(self.column(n)).reset_index(drop=True) for i in range(ncol)})
        if ncol == 0:
            df = pd.DataFrame(index=range(n))
        df.index = self.index(n)
        if r.random() < 0.7:
            df.columns = r.choice([["c%d" % i for i in range(ncol)], [r.choice(["dup", "$x"]) for _ in range(ncol)]])
        return df

    def hashable(self, depth=0):
        r = self.r
        k = r.randrange(9 if depth < 2 else 7)
        if k == 7:
            return tuple(self.hashable(depth + 1) for _ in range(2))
        if k == 8:
            return frozenset(self.hashable(depth + 1) for _ in range(2))
        return [None, r.randrange(-10, 10), self.text(), b"b", decimal.Decimal("1.5"), fractions.Fraction(1, 3),
                uuid.UUID(int=r.getrandbits(128))][k]

    def value(self, depth=0):
        r = self.r
        if depth >= 4 or r.random() < 0.45:
            return self.scalar()
        k = r.randrange(6)
        n = r.randrange(0, 5)
        if k == 0:
            return [self.value(depth + 1) for _ in range(n)]
        if k == 1:
            return tuple(self.value(depth + 1) for _ in range(n))
        if k == 2:
            return r.choice([set, frozenset])(self.hashable() for _ in range(n))
        if k == 3:
            return {self.text(): self.value(depth + 1) for _ in range(n)}
        if k == 4:
            return {self.hashable(): self.value(depth + 1) for _ in range(n)}
        return {"$type": r.choice(["repr", "int", "x"]), "value": self.value(depth + 1)}


def samples():
    g = Gen(1234)
    return [g.value() for _ in range(500)]


SAMPLES = samples()


def wire(v):
    """encode, through JSON text as the service sends it, decode."""
    text = json.dumps(encode(v), allow_nan=False)
    return decode(json.loads(text))


# ---- round trips ----

def test_generated_values_round_trip():
    types = set()
    for i, v in enumerate(SAMPLES):
        back = wire(v)
        assert same(v, back), (i, v, back)
        types.add(type(v).__name__)
    # The generator covers the containers and reaches numpy and pandas.
    assert {"list", "tuple", "dict", "DataFrame", "Series", "ndarray"} <= types, types


def test_every_covered_type_round_trips():
    g = Gen(99)
    explicit = [
        None, True, False, 0, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 2 ** 64, -(10 ** 4300), 3 ** 50000,
        1.5, math.nan, math.inf, -math.inf, -0.0, 5e-324, complex(-0.0, math.nan),
        "", "plain", "\x00", "\ud800", "$type", "é😀", b"", b"\x00\xff", bytearray(b"ab"),
        [], (), (1,), set(), {1, "a"}, frozenset({(1, 2)}), {}, {"a": 1}, {"$type": "repr", "value": "x"},
        {"$": 1}, {1: "int key", "s": 2, (1, 2): 3, None: 4}, {"\x00": 1},
        decimal.Decimal("NaN"), decimal.Decimal("-sNaN"), decimal.Decimal("Infinity"), decimal.Decimal("-0.000"),
        decimal.Decimal("1e-1000"), fractions.Fraction(-7, 3), fractions.Fraction(2 ** 100, 3 ** 60),
        dt.datetime(2021, 11, 7, 1, 30, tzinfo=zoneinfo.ZoneInfo("America/New_York"), fold=1),
        dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc),
        dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")),
        dt.date(2024, 2, 29), dt.time(23, 59, 59, 999999, tzinfo=dt.timezone(-dt.timedelta(hours=23, minutes=59))),
        dt.time(1, 2), dt.timedelta(days=-999999999), dt.timedelta.max, uuid.UUID(int=0),
        np.array(3.5), np.zeros((0, 3), dtype="float32"), np.arange(12, dtype=">i8").reshape(3, 4)[:, ::2].astype("i8"),
        np.array([[1, "a"], [None, [2]]], dtype=object), np.array([], dtype="U1"), np.array([b"a\x00"], dtype="S2"),
        np.array(["2020-01-01", "NaT"], dtype="datetime64[ms]"), np.array([1, -1], dtype="timedelta64[ns]"),
        np.float16(1.5), np.int64(-5), np.uint64(2 ** 64 - 1), np.bool_(True), np.complex128(complex(1, -0.0)),
        np.datetime64("2020-01-01T00:00:00.123", "ms"), np.timedelta64("NaT"), np.longdouble("1e4000"),
        pd.DataFrame(), pd.Series(dtype="float64"), pd.RangeIndex(0), pd.Index([], dtype=object),
        pd.DataFrame({"a": [1, 2]}, index=pd.MultiIndex.from_tuples([("x", 1), ("y", 2)], names=["k", None])),
        pd.DataFrame([[1, 2], [3, 4]], columns=pd.MultiIndex.from_tuples([("a", "b"), ("a", "c")])),
        pd.DataFrame({"a": [1], "b": [2]}).rename(columns={"b": "a"}),  # duplicate labels
        pd.Series([dt.datetime(2020, 1, 1)], dtype=object),  # stays object, not inferred
        pd.Series(pd.Categorical([], categories=[1, 2])),
        pd.Series(pd.to_datetime(["2020-01-01"]).tz_localize(dt.timezone(dt.timedelta(hours=2)))),
        pd.Timestamp("1677-09-22"), pd.Timedelta(0), pd.NaT, pd.NA,
    ] + [g.frame() for _ in range(30)] + [g.series() for _ in range(30)] + [g.index() for _ in range(30)]
    for v in explicit:
        back = wire(v)
        assert same(v, back), (v, back)


def test_json_output_is_strict():
    # No NaN/Infinity literals, no NUL, no lone surrogates: any JSON parser takes it.
    for v in SAMPLES:
        text = json.dumps(encode(v), allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
        assert "\\u0000" not in text


def test_plain_json_stays_plain():
    v = {"a": [1, 2.5, "x", None, True], "b": {"c": -3}}
    assert encode(v) == v
    assert decode(v) == v


def test_user_dict_with_dollar_keys_stays_a_dict():
    for v in [{"$type": "repr", "type": "x", "value": "y"}, {"$type": "int", "value": "12"},
              [{"a": {"$type": "tuple", "items": []}}], {"$foo": 1, "ok": 2}]:
        enc = encode(v)
        assert same(decode(json.loads(json.dumps(enc))), v)
    assert encode({"$type": "x"})["$type"] == "dict"


def test_int_boundaries():
    assert encode(2 ** 53 - 1) == 2 ** 53 - 1
    assert encode(2 ** 53) == {"$type": "int", "value": str(2 ** 53)}
    assert encode(-(2 ** 53)) == {"$type": "int", "value": str(-(2 ** 53))}
    big = encode(7 ** 20000)
    assert big["value"].startswith("0x")  # past 4300 digits: hex, linear to parse
    assert decode(big) == 7 ** 20000


def test_unsupported_values_fall_back_to_repr():
    class Thing:
        def __repr__(self):
            return "Thing(\ud800\x00)"

    class Bad:
        def __repr__(self):
            raise RuntimeError("no")

    class Huge:
        def __repr__(self):
            return "x" * (1 << 20)

    Point = collections.namedtuple("Point", "x y")
    for v, name in [(Thing(), "Thing"), (Bad(), "Bad"), (Point(1, 2), "Point"),
                    (collections.OrderedDict(a=1), "OrderedDict"), (range(3), "range"),
                    (np.zeros(2, dtype="i4,f8"), "ndarray"), (pd.Period("2020-01"), "Period"),
                    (pd.Series(pd.period_range("2020", periods=2, freq="M")), "Series")]:
        enc = encode(v)
        json.dumps(enc, allow_nan=False).encode("utf-8")
        assert enc["$type"] == "repr", enc
        back = decode(json.loads(json.dumps(enc)))
        assert isinstance(back, RemoteRepr) and back.type_name.endswith(name), back
    assert decode(encode(Bad())) == "<unrepresentable>"
    assert decode(encode(Thing())) == "Thing(\\ud800\\x00)"
    assert len(decode(encode(Huge()))) == V.MAX_REPR
    r = decode({"$type": "repr", "type": "mod.Cls", "value": "Cls(1)"})
    assert isinstance(r, RemoteRepr) and r == "Cls(1)" and r.type_name == "mod.Cls"
    assert repr([r]) == "[Cls(1)]"


def test_other_tzinfo_becomes_a_fixed_offset():
    class Fixed(dt.tzinfo):
        def utcoffset(self, d):
            return dt.timedelta(hours=-4)

        def tzname(self, d):
            return "EDT"

        def dst(self, d):
            return dt.timedelta(hours=1)

    v = dt.datetime(2020, 7, 1, 12, tzinfo=Fixed())
    back = wire(v)
    assert back == v and back.tzinfo == dt.timezone(dt.timedelta(hours=-4), "EDT") and back.tzname() == "EDT"


# ---- encode limits: each refused quickly ----

def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def refused(value, match, **kw):
    def run():
        with pytest.raises(ValueEncodeError, match=match):
            encode(value, **kw)
    took = timed(run)
    assert took < 2, took
    return took


def nest(n, make=lambda x: [x]):
    v = 0
    for _ in range(n):
        v = make(v)
    return v


def test_encode_depth_limit():
    refused(nest(1000), "nested deeper than 64")
    refused(nest(1000, lambda x: {"k": x}), "nested deeper than 64")
    refused(nest(1000, lambda x: (x,)), "nested deeper than 64")
    refused(nest(65), "nested deeper than 64")
    assert same(decode(encode(nest(64))), nest(64))
    assert same(decode(encode(nest(64, lambda x: {1: (x,)}[1]))), nest(64, lambda x: (x,)))


def test_encode_item_limit():
    refused([None] * 2_000_000, "more than 1000000 items")
    refused([[0] * 1000 for _ in range(2000)], "more than 1000000 items")
    refused({i: i for i in range(1_500_000)}, "more than 1000000 items")
    refused([1, 2, 3], "more than 2 items", max_items=2)


def test_encode_cycles():
    a = [1]
    a.append(a)
    refused(a, "cycle")
    d = {}
    d["self"] = [d]
    refused(d, "cycle")
    refused(nest(3, lambda x: (x, d)), "cycle")
    s = pd.Series([None], dtype=object)
    s[0] = s
    refused(s, "cycle")
    shared = [1, 2]
    assert decode(encode([shared, shared])) == [[1, 2], [1, 2]]  # sharing is not a cycle


def test_encode_byte_limit():
    refused("x" * (17 << 20), "larger than 16 MiB")
    refused(["x" * (1 << 20)] * 17, "larger than 16 MiB")
    refused(b"\x00" * (13 << 20), "larger than 16 MiB")
    refused(np.zeros(3 << 20), "larger than 16 MiB")  # 24 MiB of float64, not copied
    refused(pd.DataFrame({"a": np.zeros(3 << 20)}), "larger than 16 MiB")
    refused("€" * (7 << 20), "larger than 16 MiB")  # 7 Mi characters, 21 MiB of UTF-8
    refused("abcdefghijkl", "larger than 10 bytes", max_bytes=10)


def test_encode_large_value_within_limits_is_fast():
    v = [i * 0.5 for i in range(500_000)]
    t = time.monotonic()
    assert decode(json.loads(json.dumps(encode(v)))) == v
    assert time.monotonic() - t < 5


# ---- hostile decode input ----

def bad(obj, match=None, **kw):
    def run():
        with pytest.raises(ValueDecodeError, match=match):
            decode(obj, **kw)
    took = timed(run)
    assert took < 2, took
    return took


def test_decode_unknown_tags_and_wrong_fields():
    for obj in [
        {"$type": "os.system"}, {"$type": "pickle", "value": ""}, {"$type": 5}, {"$type": None},
        {"$type": ["int"]}, {"$other": 1}, {"a": {"$": 1}},
        {"$type": "int"}, {"$type": "int", "value": 5}, {"$type": "int", "value": "5", "extra": 1},
        {"$type": "float", "value": "1.5"}, {"$type": "float", "value": "NaN"},
        {"$type": "bytes", "b64": 5}, {"$type": "bytes", "b64": "@@@@"}, {"$type": "bytes", "b64": "abc"},
        {"$type": "str", "b64": "/w=="}, {"$type": "complex", "real": "1", "imag": 0},
        {"$type": "complex", "real": [1], "imag": 0}, {"$type": "tuple", "items": "ab"},
        {"$type": "tuple", "items": {"a": 1}}, {"$type": "set", "items": [[1]]},
        {"$type": "dict", "items": [[1]]}, {"$type": "dict", "items": [[[1], 2]]}, {"$type": "dict", "items": [1]},
        {"$type": "decimal", "value": "1_000"}, {"$type": "decimal", "value": " 1"}, {"$type": "decimal", "value": 1},
        {"$type": "fraction", "numerator": 1, "denominator": 0},
        {"$type": "fraction", "numerator": 1.5, "denominator": 2},
        {"$type": "fraction", "numerator": True, "denominator": 2},
        {"$type": "datetime", "value": 5}, {"$type": "datetime", "value": "2020-13-01T00:00:00"},
        {"$type": "datetime", "value": "2020-01-01 00:00:00"},
        {"$type": "datetime", "value": "2020-01-01T00:00:00", "fold": 2},
        {"$type": "datetime", "value": "2020-01-01T00:00:00", "tz": {"zone": "../../etc/passwd"}},
        {"$type": "datetime", "value": "2020-01-01T00:00:00", "tz": {"zone": "/etc/passwd"}},
        {"$type": "datetime", "value": "2020-01-01T00:00:00", "tz": {"zone": "No/Such_Zone"}},
        {"$type": "datetime", "value": "2020-01-01T00:00:00", "tz": {"offset": "+24:00"}},
        {"$type": "datetime", "value": "2020-01-01T00:00:00", "tz": {"offset": "0100"}},
        {"$type": "datetime", "value": "2020-01-01T00:00:00", "tz": "UTC"},
        {"$type": "date", "value": "2020-02-30"}, {"$type": "time", "value": "24:00:00"},
        {"$type": "timedelta", "days": "1", "seconds": 0, "microseconds": 0},
        {"$type": "timedelta", "days": 10 ** 10, "seconds": 0, "microseconds": 0},
        {"$type": "timedelta", "days": True, "seconds": 0, "microseconds": 0},
        {"$type": "uuid", "value": "not-a-uuid"}, {"$type": "uuid", "value": "{12345678-1234-5678-1234-567812345678}"},
        {"$type": "repr", "type": "x"}, {"$type": "repr", "type": 1, "value": "x"},
        {"$type": "ndarray", "dtype": "object", "shape": [1], "data": "AAAAAAAAAAA="},
        {"$type": "ndarray", "dtype": "V8", "shape": [1], "data": "AAAAAAAAAAA="},
        {"$type": "ndarray", "dtype": "i8,i8", "shape": [1], "data": "AAAAAAAAAAA="},
        {"$type": "ndarray", "dtype": "int64", "shape": "1", "data": "AAAAAAAAAAA="},
        {"$type": "ndarray", "dtype": "int64", "shape": [1.0], "data": "AAAAAAAAAAA="},
        {"$type": "ndarray", "dtype": "int64", "shape": [True], "data": "AAAAAAAAAAA="},
        {"$type": "ndarray", "dtype": "int64", "shape": [1] * 33, "data": "AAAAAAAAAAA="},
        {"$type": "ndarray", "dtype": "U2", "shape": [1], "items": [1]},
        {"$type": "ndarray", "dtype": "object", "shape": [2], "items": [1]},
        {"$type": "npscalar", "dtype": "int8", "value": 300}, {"$type": "npscalar", "dtype": "bool", "value": 1},
        {"$type": "npscalar", "dtype": "object", "value": 1}, {"$type": "npscalar", "dtype": "float64", "value": [1.0]},
        {"$type": "npscalar", "dtype": "int64", "data": "AAAAAAAAAAA="},
        {"$type": "npscalar", "dtype": "int64", "value": {"$type": "tuple", "items": []}},
        {"$type": "pd.Series", "name": None, "dtype": "int64",
         "index": {"$type": "pd.RangeIndex", "start": 0, "stop": 2, "step": 1, "name": None},
         "values": {"$type": "ndarray", "dtype": "int64", "shape": [1], "data": "AAAAAAAAAAA="}},
        {"$type": "pd.Series", "name": [1], "dtype": "object", "values": [],
         "index": {"$type": "pd.RangeIndex", "start": 0, "stop": 0, "step": 1, "name": None}},
        {"$type": "pd.Series", "name": None, "dtype": "Sparse[int64]", "values": [],
         "index": {"$type": "pd.RangeIndex", "start": 0, "stop": 0, "step": 1, "name": None}},
        {"$type": "pd.Series", "name": None, "dtype": "string[pyarrow]", "values": [],
         "index": {"$type": "pd.RangeIndex", "start": 0, "stop": 0, "step": 1, "name": None}},
        {"$type": "pd.Index", "name": None, "dtype": "int64", "values": [1, 2]},
        {"$type": "pd.Index", "name": None, "dtype": "int64",
         "values": {"$type": "ndarray", "dtype": "int32", "shape": [0], "data": ""}},
        {"$type": "pd.RangeIndex", "start": 0, "stop": 5, "step": 0, "name": None},
        {"$type": "pd.DataFrame", "index": [], "columns": [], "data": []},
        {"$type": "pd.MultiIndex", "names": [], "levels": [], "codes": []},
        {"$type": "pd.Timestamp", "value": "now"}, {"$type": "pd.Timedelta", "days": 1},
    ]:
        bad(obj)


def test_decode_rejects_non_json_objects():
    for obj in [(1, 2), {1, 2}, b"x", object(), 1j, {1: 2}, [decimal.Decimal(1)]]:
        bad(obj)


def test_decode_array_sizes():
    one = "AAAAAAAAAAA="  # 8 bytes
    bad({"$type": "ndarray", "dtype": "int64", "shape": [2], "data": one}, "base64")
    bad({"$type": "ndarray", "dtype": "int64", "shape": [1], "data": one + "AAAA"}, "base64")
    bad({"$type": "ndarray", "dtype": "int32", "shape": [3], "data": one}, "base64")
    bad({"$type": "ndarray", "dtype": "int64", "shape": [-1], "data": one}, "shape")
    bad({"$type": "ndarray", "dtype": "int64", "shape": [2 ** 62], "data": one}, "shape")
    bad({"$type": "ndarray", "dtype": "int64", "shape": [2 ** 40, 2 ** 40], "data": one}, "larger than")
    bad({"$type": "ndarray", "dtype": "complex128", "shape": [1 << 21], "data": one}, "larger than")
    bad({"$type": "ndarray", "dtype": "U999999999", "shape": [4], "items": ["a"] * 4}, "larger than")
    bad({"$type": "npscalar", "dtype": "float128", "data": one}, "base64")
    assert decode({"$type": "ndarray", "dtype": "int64", "shape": [1], "data": one}).tolist() == [0]
    assert decode({"$type": "ndarray", "dtype": "int64", "shape": [0, 2 ** 40], "data": ""}).shape == (0, 2 ** 40)


def test_decode_int_strings():
    for s in ["12a", " 12", "+5", "1_000", "0x", "0xZZ", "01", "--1", "", "1.0", "١٢"]:
        bad({"$type": "int", "value": s})
    bad({"$type": "int", "value": "7" * 10_000_000}, "digits")
    bad({"$type": "int", "value": "0x" + "f" * (17 << 20)}, "longer than")
    assert decode({"$type": "int", "value": "-0x" + "f" * 1000}) == -(16 ** 1000 - 1)


def test_decode_nesting_is_bounded():
    for make in [lambda x: [x], lambda x: {"k": x}, lambda x: {"$type": "tuple", "items": [x]},
                 lambda x: {"$type": "dict", "items": [[1, x]]},
                 lambda x: {"$type": "ndarray", "dtype": "object", "shape": [1], "items": [x]}]:
        bad(nest(10_000, make), "nested deeper than 64")
        bad(nest(100_000, make), "nested deeper than 64")
    # Leaf fields do not nest at all.
    bad(nest(10_000, lambda x: {"$type": "npscalar", "dtype": "int64", "value": x}))
    bad(nest(10_000, lambda x: {"$type": "complex", "real": x, "imag": 0}))
    bad(nest(65), "nested deeper than 64")
    assert decode(nest(64)) == nest(64)
    bad(nest(5), "nested deeper than 3", max_depth=3)


def test_decode_item_and_byte_limits():
    bad([None] * 2_000_000, "more than 1000000 items")
    bad({"$type": "tuple", "items": [0] * 1_500_000}, "more than 1000000 items")
    bad({"$type": "bytes", "b64": "AAAA" * (6 << 20)}, "longer than 16 MiB")
    bad(["x" * (1 << 20)] * 17, "larger than 16 MiB")
    bad({"$type": "str", "b64": "AAAA" * 10}, "larger than 20 bytes", max_bytes=20)


def test_decode_needs_numpy_only_for_numpy(monkeypatch):
    obj = encode(np.arange(3))
    monkeypatch.setitem(sys.modules, "numpy", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "pandas", None)
    bad(obj, "numpy is needed")
    bad({"$type": "pd.NA"}, "pandas is needed")
    assert decode({"$type": "tuple", "items": [1]}) == (1,)


def test_decode_imports_nothing_but_numpy_and_pandas(monkeypatch):
    payloads = [json.loads(json.dumps(encode(v))) for v in SAMPLES]
    seen = []
    real = builtins.__import__

    def spy(name, globals=None, locals=None, fromlist=(), level=0):
        who = (globals or {}).get("__name__", "?")
        seen.append((name, who))
        return real(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", spy)
    for p in payloads:
        decode(p)
    monkeypatch.undo()
    # Only numpy and pandas (and their parts, which numpy's C code imports
    # on our behalf); numpy and pandas may import what they need.
    allowed = ("numpy", "pandas")
    wrong = {(name, who) for name, who in seen
             if name.split(".")[0] not in allowed and who.split(".")[0] not in allowed}
    assert not wrong, wrong
    assert {name.split(".")[0] for name, who in seen if who == V.__name__} <= set(allowed)


# ---- the module itself ----

def test_module_is_stdlib_only_and_python39_syntax():
    src = open(MODULE).read()
    ast.parse(src, feature_version=(3, 9))
    # Loaded alone under another name, as the zygote embeds it.
    code = ("import sys, json, importlib.util as u\n"
            "s = u.spec_from_file_location('_pyrunner_values', %r)\n"
            "v = u.module_from_spec(s); s.loader.exec_module(v)\n"
            "print(json.dumps([sorted(m for m in ('numpy', 'pandas') if m in sys.modules), "
            "v.encode({'a': (1, 2.5, float('nan'))})]))" % MODULE)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [[], {"a": {"$type": "tuple", "items": [1, 2.5, {"$type": "float", "value": "nan"}]}}]
