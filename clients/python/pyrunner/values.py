"""Typed JSON encoding of Python values (the format is docs/values.md).

One module for both sides: the sandbox calls encode() on the value a run
produced, the client calls decode() on the JSON it got back. Values JSON
cannot express are objects with a "$type" key. Only the standard library is
imported here. encode() uses numpy/pandas only if the program already
imported them; decode() imports them only for their own tags.
"""
import base64
import datetime as _dt
import decimal
import fractions
import math
import re
import sys
import uuid

try:
    import zoneinfo
except ImportError:  # pragma: no cover - Python < 3.9
    zoneinfo = None

__all__ = ["LIMITS", "MAX_REPR", "ValueEncodeError", "ValueDecodeError", "RemoteRepr", "encode", "decode"]

LIMITS = {"max_depth": 64, "max_items": 1_000_000, "max_bytes": 16 << 20, "max_str": 16 << 20}
MAX_REPR = 64 << 10          # characters of repr() kept by the fallback
_SAFE_INT = 2 ** 53 - 1      # larger ints are tagged (JSON parsers use doubles)
_MAX_DEC_DIGITS = 4300       # longer ints are sent in hex (linear to parse)
_MAX_FRACTION_BITS = 1 << 17  # bounds the gcd a Fraction costs on decode
_MAX_NDIM = 32


class ValueEncodeError(ValueError):
    """The value cannot be encoded: a limit was exceeded or it has a cycle."""


class ValueDecodeError(ValueError):
    """The input is not a valid encoded value, or it exceeds the limits."""


class _Unsupported(Exception):
    """An encoder cannot represent this value: use the repr fallback."""


class RemoteRepr(str):
    """repr() text of a remote value of a type the format does not cover.

    .type_name is the remote type as "module.qualname". Nothing of that type
    is ever created; repr() shows the text as the remote side printed it."""

    def __new__(cls, text, type_name):
        self = str.__new__(cls, text)
        self.type_name = type_name
        return self

    def __repr__(self):
        return str.__str__(self)

    def __reduce__(self):
        return (RemoteRepr, (str.__str__(self), self.type_name))


# ---- helpers shared by both sides ----

def _human(n):
    return "%d MiB" % (n >> 20) if n and n % (1 << 20) == 0 else "%d bytes" % n


def _limits(max_depth, max_items, max_bytes, max_str):
    return (LIMITS["max_depth"] if max_depth is None else max_depth,
            LIMITS["max_items"] if max_items is None else max_items,
            LIMITS["max_bytes"] if max_bytes is None else max_bytes,
            LIMITS["max_str"] if max_str is None else max_str)


def _b64e(raw):
    return base64.b64encode(raw).decode("ascii")


def _utf8_ok(s):
    """True if s goes into JSON as is: no NUL (rejected by many C parsers,
    jansson included) and no lone surrogates (not valid UTF-8)."""
    if "\x00" in s:
        return False
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _safe_text(s):
    """Free text (repr, type and zone names) made valid for JSON strings."""
    if _utf8_ok(s):
        return s
    return s.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _float_json(x):
    if x != x:
        return {"$type": "float", "value": "nan"}
    if x in (math.inf, -math.inf):
        return {"$type": "float", "value": "inf" if x > 0 else "-inf"}
    return x


def _fmt_offset(td):
    us = td // _dt.timedelta(microseconds=1)
    sign, us = ("-" if us < 0 else "+"), abs(us)
    h, us = divmod(us, 3600 * 10 ** 6)
    m, us = divmod(us, 60 * 10 ** 6)
    s, us = divmod(us, 10 ** 6)
    text = "%s%02d:%02d" % (sign, h, m)
    if s or us:
        text += ":%02d" % s + (".%06d" % us if us else "")
    return text


def _tz_spec(tz, value, zones):
    """tzinfo -> {"offset": "+HH:MM", "name"?} or {"zone": key}.

    datetime.timezone is exact; ZoneInfo goes by key. Other tzinfo: with
    zones=True (pandas) a pytz zone goes by key, else the fixed offset that
    applies to `value` is sent."""
    if type(tz) is _dt.timezone:
        off, name = tz.utcoffset(None), tz.tzname(None)
    elif zoneinfo is not None and type(tz) is zoneinfo.ZoneInfo and isinstance(tz.key, str):
        return {"zone": _safe_text(tz.key)}
    elif zones and isinstance(getattr(tz, "zone", None), str):
        return {"zone": _safe_text(tz.zone)}
    elif zones or value is None:
        raise _Unsupported
    else:
        off, name = value.utcoffset(), value.tzname()
        if off is None:
            raise _Unsupported
    spec = {"offset": _fmt_offset(off)}
    if isinstance(name, str) and name != _dt.timezone(off).tzname(None):
        spec["name"] = _safe_text(name)
    return spec


_PD_EXT = frozenset("Int8 Int16 Int32 Int64 UInt8 UInt16 UInt32 UInt64 Float32 Float64 boolean string".split())
_NP_NAMES = frozenset("bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64 "
                      "float96 float128 complex64 complex128 complex192 complex256".split())
_NP_TIME_RE = re.compile(r"(?:datetime64|timedelta64)(?:\[\d{0,6}(?:Y|M|W|D|h|m|s|ms|us|ns|ps|fs|as)\])?")
_NP_STR_RE = re.compile(r"([US])(\d{1,9})")
_DEC_INT_RE = re.compile(r"-?(?:0|[1-9][0-9]*)")
_HEX_INT_RE = re.compile(r"-?0x[0-9a-fA-F]+")
_DECIMAL_RE = re.compile(r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|Infinity|s?NaN\d*)")
_DATE = r"(\d{4})-(\d\d)-(\d\d)"
_TIME = r"(\d\d):(\d\d):(\d\d)(?:\.(\d{6}))?"
_DATE_RE = re.compile(_DATE)
_TIME_RE = re.compile(_TIME)
_DATETIME_RE = re.compile(_DATE + "T" + _TIME)
_TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6}|\.\d{9})?")
_OFFSET_RE = re.compile(r"([+-])(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{6}))?)?")
_ZONE_RE = re.compile(r"[A-Za-z0-9_+\-]{1,64}(?:/[A-Za-z0-9_+\-]{1,64}){0,4}")
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _loaded(name, attrs):
    """A module the program imported, if it looks complete."""
    mod = sys.modules.get(name)
    try:
        return mod if mod is not None and all(hasattr(mod, a) for a in attrs) else None
    except Exception:
        return None


# ---- encoding ----

class _Encoder:
    def __init__(self, max_depth, max_items, max_bytes, max_str):
        self.max_depth, self.max_items, self.max_bytes, self.max_str = max_depth, max_items, max_bytes, max_str
        self.items = self.nbytes = 0
        self.active = set()  # ids of the containers being encoded
        self.np = _loaded("numpy", ("ndarray", "generic"))
        self.pd = _loaded("pandas", ("DataFrame", "Series", "Index", "RangeIndex", "MultiIndex",
                                     "Timestamp", "Timedelta", "NaT", "NA", "CategoricalDtype",
                                     "DatetimeTZDtype"))
        if self.np is None:
            self.pd = None
        # Exact types only: a subclass (namedtuple, OrderedDict...) is not
        # covered and falls back to repr.
        self.handlers = {
            tuple: self.e_seq, set: self.e_seq, frozenset: self.e_seq,
            bytes: self.e_bytes, bytearray: self.e_bytes, fractions.Fraction: self.e_fraction,
            _dt.datetime: self.e_clock, _dt.time: self.e_clock,
            complex: lambda v, d: {"$type": "complex", "real": _float_json(v.real), "imag": _float_json(v.imag)},
            decimal.Decimal: lambda v, d: {"$type": "decimal", "value": self.e_str(str(v))},
            _dt.date: lambda v, d: {"$type": "date", "value": v.isoformat()},
            _dt.timedelta: lambda v, d: {"$type": "timedelta", "days": v.days, "seconds": v.seconds,
                                         "microseconds": v.microseconds},
            uuid.UUID: lambda v, d: {"$type": "uuid", "value": str(v)},
        }

    def count(self, nbytes, items=1):
        self.items += items
        self.nbytes += nbytes
        if self.items > self.max_items:
            raise ValueEncodeError("result too large: more than %d items" % self.max_items)
        if self.nbytes > self.max_bytes:
            raise ValueEncodeError("result larger than %s" % _human(self.max_bytes))

    def check_depth(self, depth):
        if depth >= self.max_depth:
            raise ValueEncodeError("result nested deeper than %d" % self.max_depth)

    def nested(self, v, depth, n, body):
        """Encode container v (n children) with body(), guarding the limits."""
        if id(v) in self.active:
            raise ValueEncodeError("result contains a cycle")
        self.check_depth(depth)
        if self.items + n > self.max_items:
            raise ValueEncodeError("result too large: more than %d items" % self.max_items)
        self.active.add(id(v))
        try:
            return body()
        finally:
            self.active.discard(id(v))

    def enc(self, v, depth):
        t = type(v)
        if t is str:
            return self.e_str(v)
        self.count(2)  # the separator; then the value's own text
        if v is None or t is bool:
            self.count(5, 0)
            return v
        if t is int:
            if -_SAFE_INT <= v <= _SAFE_INT:
                self.count(v.bit_length() * 3 // 10 + 2, 0)
                return v
            return self.e_int(v)
        if t is float:
            self.count(len(float.__repr__(v)), 0)
            return _float_json(v)
        if t is list:
            return self.nested(v, depth, len(v), lambda: [self.enc(x, depth + 1) for x in v])
        if t is dict:
            return self.e_dict(v, depth)
        h = self.handlers.get(t) or self.foreign(v, t)
        if h is None:
            return self.e_repr(v)
        try:
            return h(v, depth)
        except ValueEncodeError:
            raise
        except Exception:  # an odd value (exotic dtype, user tzinfo...)
            return self.e_repr(v)

    def foreign(self, v, t):
        np, pd = self.np, self.pd
        if np is None:
            return None
        if t is np.ndarray:
            return self.e_ndarray
        if isinstance(v, np.generic):
            return self.e_npscalar
        if pd is None:
            return None
        if v is pd.NaT or v is pd.NA:
            return lambda v, d: {"$type": "pd.NaT" if v is pd.NaT else "pd.NA"}
        if t is pd.DataFrame:
            return self.e_frame
        if t is pd.Series:
            return self.e_series
        if isinstance(v, pd.Index) and t.__module__.startswith("pandas."):
            return self.e_index
        if t is pd.Timestamp:
            return self.e_timestamp
        if t is pd.Timedelta:
            return self.e_pdtimedelta
        return None

    def e_repr(self, v):
        t = type(v)
        try:
            name = "%s.%s" % (t.__module__, t.__qualname__)
        except Exception:
            name = "<unknown>"
        try:
            text = str.__getitem__(repr(v), slice(0, MAX_REPR))
        except (Exception, SystemExit):
            text = "<unrepresentable>"
        text, name = _safe_text(text), _safe_text(name[:1000])
        self.count(len(text) + len(name) + 40)
        return {"$type": "repr", "type": name, "value": text}

    def e_str(self, s):
        n = len(s)
        self.count(n + 2)
        if n > self.max_str:
            raise ValueEncodeError("result has a string longer than %s" % _human(self.max_str))
        if _utf8_ok(s):
            if not s.isascii():
                self.count(len(s.encode("utf-8")) - n, 0)
            return s
        raw = s.encode("utf-8", "surrogatepass")
        self.count(len(raw) // 3 + 24, 0)
        return {"$type": "str", "b64": _b64e(raw)}

    def e_int(self, v):
        self.count(v.bit_length() // 3 + 24, 0)
        try:
            text = str(v) if v.bit_length() < 14000 else hex(v)
        except ValueError:  # the interpreter's int_max_str_digits
            text = hex(v)
        return {"$type": "int", "value": text}

    def e_dict(self, v, depth):
        def body():
            if all(type(k) is str and k[:1] != "$" and _utf8_ok(k) for k in v):
                self.count(sum(len(k) + 4 for k in v), 0)
                return {k: self.enc(x, depth + 1) for k, x in v.items()}
            return {"$type": "dict", "items": [[self.enc(k, depth + 1), self.enc(x, depth + 1)]
                                               for k, x in v.items()]}
        return self.nested(v, depth, len(v), body)

    def e_seq(self, v, depth):
        tag = type(v).__name__  # tuple, set or frozenset
        return self.nested(v, depth, len(v), lambda: {"$type": tag, "items": [self.enc(x, depth + 1) for x in v]})

    def e_bytes(self, v, depth):
        self.count(len(v) * 4 // 3 + 24, 0)
        if len(v) > self.max_str:
            raise ValueEncodeError("result has a bytes value longer than %s" % _human(self.max_str))
        return {"$type": type(v).__name__, "b64": _b64e(v)}

    def e_fraction(self, v, depth):
        if max(v.numerator.bit_length(), v.denominator.bit_length()) > _MAX_FRACTION_BITS:
            raise _Unsupported
        return {"$type": "fraction", "numerator": self.enc(v.numerator, depth),
                "denominator": self.enc(v.denominator, depth)}

    def e_clock(self, v, depth):  # datetime or time: naive ISO text, then tz and fold
        out = {"$type": "datetime" if type(v) is _dt.datetime else "time",
               "value": v.replace(tzinfo=None, fold=0).isoformat()}
        if v.tzinfo is not None:
            out["tz"] = _tz_spec(v.tzinfo, v, False)
        if v.fold:
            out["fold"] = 1
        return out

    # numpy

    def e_ndarray(self, a, depth):
        dt = a.dtype
        shape = [int(d) for d in a.shape]
        if dt.fields is not None or dt.subdtype is not None:
            raise _Unsupported
        if dt.kind in "biufcmM":  # raw little-endian bytes, C order
            self.count(4 * (a.nbytes + 2) // 3 + 64)
            raw = a.astype(dt.newbyteorder("<"), copy=False).tobytes(order="C")
            return {"$type": "ndarray", "dtype": dt.name, "shape": shape, "data": _b64e(raw)}
        if dt.kind not in "OUS":
            raise _Unsupported
        name = "object" if dt.kind == "O" else "%s%d" % (dt.kind, dt.itemsize // (4 if dt.kind == "U" else 1))
        flat = a.ravel(order="C")
        return self.nested(a, depth, flat.size, lambda: {
            "$type": "ndarray", "dtype": name, "shape": shape,
            "items": [self.enc(x, depth + 1) for x in flat.tolist()]})

    def e_npscalar(self, v, depth):
        dt, np = v.dtype, self.np
        k = dt.kind
        out = {"$type": "npscalar", "dtype": dt.name}
        if k in "biu" or (k == "f" and dt.itemsize <= 8) or (k == "c" and dt.itemsize <= 16):
            out["value"] = self.enc(v.item(), depth)
        elif k in "mM":  # the int64 count of the dtype's unit
            out["value"] = self.enc(int(np.array(v).view("i8")), depth)
        elif k in "fc":  # long double: raw bytes
            out["data"] = _b64e(np.array(v).astype(dt.newbyteorder("<")).tobytes())
        elif k == "U":
            out.update(dtype="str_", value=self.e_str(str(v)))
        elif k == "S":
            out.update(dtype="bytes_", value=self.e_bytes(bytes(v), depth))
        else:
            raise _Unsupported
        return out

    # pandas

    def e_values(self, obj, depth):
        """The values of a Series or Index: {"dtype": ..., ...}."""
        pd, np = self.pd, self.np
        self.check_depth(depth)
        dt = obj.dtype
        if isinstance(dt, pd.CategoricalDtype):
            cat = obj.array
            return {"dtype": "category", "categories": self.e_index(cat.categories, depth + 1),
                    "codes": self.e_ndarray(np.asarray(cat.codes), depth + 1), "ordered": bool(cat.ordered)}
        if isinstance(dt, pd.DatetimeTZDtype):  # UTC values + zone
            utc = obj.to_numpy(dtype="datetime64[%s]" % getattr(dt, "unit", "ns"))
            return {"dtype": str(dt), "tz": _tz_spec(dt.tz, None, True), "values": self.e_ndarray(utc, depth + 1)}
        if isinstance(dt, np.dtype) and dt.kind in "biufcmM":
            return {"dtype": dt.name, "values": self.e_ndarray(obj.to_numpy(), depth + 1)}
        if isinstance(dt, np.dtype) and dt.kind == "O":
            name, vals = "object", obj.to_numpy().tolist()
        elif str(dt) in _PD_EXT:  # nullable dtypes: NA is null
            name, vals = str(dt), [None if x is pd.NA else x for x in obj.to_numpy(dtype=object).tolist()]
        else:
            raise _Unsupported
        if self.items + len(vals) > self.max_items:
            raise ValueEncodeError("result too large: more than %d items" % self.max_items)
        return {"dtype": name, "values": [self.enc(x, depth + 1) for x in vals]}

    def e_index(self, idx, depth):
        pd, t = self.pd, type(idx)

        def body():
            if t is pd.RangeIndex:
                return {"$type": "pd.RangeIndex", "start": self.enc(idx.start, depth + 1),
                        "stop": self.enc(idx.stop, depth + 1), "step": self.enc(idx.step, depth + 1),
                        "name": self.enc(idx.name, depth + 1)}
            if t is pd.MultiIndex:
                return {"$type": "pd.MultiIndex", "names": [self.enc(n, depth + 1) for n in idx.names],
                        "levels": [self.e_index(x, depth + 1) for x in idx.levels],
                        "codes": [self.e_ndarray(self.np.asarray(c), depth + 1) for c in idx.codes]}
            out = {"$type": "pd.Index", "name": self.enc(idx.name, depth + 1)}
            out.update(self.e_values(idx, depth + 1))
            return out
        return self.nested(idx, depth, 0, body)

    def e_series(self, s, depth):
        def body():
            out = {"$type": "pd.Series", "name": self.enc(s.name, depth + 1),
                   "index": self.e_index(s.index, depth + 1)}
            out.update(self.e_values(s, depth + 1))
            return out
        return self.nested(s, depth, 0, body)

    def e_frame(self, df, depth):
        ncol = df.shape[1]
        return self.nested(df, depth, ncol, lambda: {
            "$type": "pd.DataFrame", "index": self.e_index(df.index, depth + 1),
            "columns": self.e_index(df.columns, depth + 1),
            "data": [self.e_values(df.iloc[:, i], depth + 1) for i in range(ncol)]})

    def e_timestamp(self, v, depth):
        if v.tz is None:
            return {"$type": "pd.Timestamp", "value": v.isoformat()}
        return {"$type": "pd.Timestamp", "value": v.tz_convert("UTC").tz_localize(None).isoformat(),
                "tz": _tz_spec(v.tz, None, True)}

    def e_pdtimedelta(self, v, depth):
        return {"$type": "pd.Timedelta", "days": int(v.days), "seconds": int(v.seconds),
                "microseconds": int(v.microseconds), "nanoseconds": int(v.nanoseconds)}


def encode(value, *, max_depth=None, max_items=None, max_bytes=None, max_str=None):
    """value -> a JSON-able object (docs/values.md). Raises ValueEncodeError."""
    e = _Encoder(*_limits(max_depth, max_items, max_bytes, max_str))
    try:
        return e.enc(value, 0)
    except ValueEncodeError:
        raise
    except RecursionError:
        raise ValueEncodeError("result nested too deeply for the stack") from None
    except Exception as exc:  # e.g. a container changed while it was encoded
        raise ValueEncodeError("cannot encode result: %s: %s" % (type(exc).__name__, str(exc)[:200])) from None


# ---- decoding ----

def _need(name):
    mod = sys.modules.get(name)
    if mod is None:
        try:
            mod = __import__(name)
        except ImportError:
            raise ValueDecodeError("%s is needed to decode this value but is not installed" % name) from None
    return mod


def _fields(o, req, opt=()):
    """o has exactly "$type", the fields req and maybe some of opt."""
    for k in o:
        if k != "$type" and k not in req and k not in opt:
            raise ValueDecodeError("%s: unexpected field %r" % (o["$type"], str(k)[:40]))
    for k in req:
        if k not in o:
            raise ValueDecodeError("%s: missing field %r" % (o["$type"], k))


def _get(o, key, typ):
    v = o.get(key)
    if type(v) is not typ:
        raise ValueDecodeError("%s: field %r must be %s" % (o.get("$type"), key, typ.__name__))
    return v


class _Decoder:
    def __init__(self, max_depth, max_items, max_bytes, max_str):
        self.max_depth, self.max_items, self.max_bytes, self.max_str = max_depth, max_items, max_bytes, max_str
        self.items = self.nbytes = 0
        # A fixed table: the tag selects a function, never a name to look up.
        self.tags = {
            "int": self.d_int, "float": self.d_float, "str": self.d_str, "bytes": self.d_bytes,
            "bytearray": self.d_bytes, "complex": self.d_complex, "tuple": self.d_seq, "set": self.d_seq,
            "frozenset": self.d_seq, "dict": self.d_dict, "decimal": self.d_decimal,
            "fraction": self.d_fraction, "datetime": self.d_clock, "date": self.d_date,
            "time": self.d_clock, "timedelta": self.d_timedelta, "uuid": self.d_uuid,
            "repr": self.d_repr, "ndarray": self.d_ndarray, "npscalar": self.d_npscalar,
            "pd.DataFrame": self.d_frame, "pd.Series": self.d_series, "pd.Index": self.d_index,
            "pd.RangeIndex": self.d_range, "pd.MultiIndex": self.d_multi,
            "pd.Timestamp": self.d_timestamp, "pd.Timedelta": self.d_pdtimedelta,
            "pd.NaT": self.d_pdconst, "pd.NA": self.d_pdconst,
        }

    def count(self, nbytes, items=0):
        self.items += items
        self.nbytes += nbytes
        if self.items > self.max_items:
            raise ValueDecodeError("value too large: more than %d items" % self.max_items)
        if self.nbytes > self.max_bytes:
            raise ValueDecodeError("value larger than %s" % _human(self.max_bytes))

    def enter(self, depth, n):
        """Checks before decoding a container of n children at this depth."""
        if depth >= self.max_depth:
            raise ValueDecodeError("value nested deeper than %d" % self.max_depth)
        if self.items + n > self.max_items:
            raise ValueDecodeError("value too large: more than %d items" % self.max_items)

    def dec(self, o, depth):
        t = type(o)
        self.count(8, 1)
        if o is None or t is bool or t is int or t is float:
            return o
        if t is str:
            return self.text(o)
        if t is list:
            self.enter(depth, len(o))
            return [self.dec(x, depth + 1) for x in o]
        if t is not dict:
            raise ValueDecodeError("not a JSON value: %s" % t.__name__)
        if "$type" in o:
            tag = o["$type"]
            h = self.tags.get(tag) if type(tag) is str else None
            if h is None:
                raise ValueDecodeError("unknown $type %s" % (repr(tag[:40]) if type(tag) is str else
                                                            "of JSON type " + type(tag).__name__))
            try:
                return h(o, depth)
            except ValueDecodeError:
                raise
            except (ValueError, TypeError, ArithmeticError, LookupError, AttributeError) as e:
                raise ValueDecodeError("bad %s value: %s" % (tag, str(e)[:200])) from None
        self.enter(depth, len(o))
        out = {}
        for k, x in o.items():
            if type(k) is not str or k[:1] == "$":
                raise ValueDecodeError("object key %r without $type" % str(k)[:40])
            self.count(len(k))
            out[k] = self.dec(x, depth + 1)
        return out

    def text(self, s):
        if len(s) > self.max_str:
            raise ValueDecodeError("value has a string longer than %s" % _human(self.max_str))
        self.count(len(s))
        return s

    def b64(self, s, size=None):
        """base64 text -> bytes; if size is given, exactly that many."""
        if type(s) is not str:
            raise ValueDecodeError("base64 data must be a string")
        if size is not None and len(s) != 4 * ((size + 2) // 3):
            raise ValueDecodeError("data is %d base64 characters, %d bytes need %d"
                                   % (len(s), size, 4 * ((size + 2) // 3)))
        n = len(s) // 4 * 3
        if n > self.max_str:
            raise ValueDecodeError("value has a bytes value longer than %s" % _human(self.max_str))
        self.count(n)
        raw = base64.b64decode(s, validate=True)
        if size is not None and len(raw) != size:
            raise ValueDecodeError("data holds %d bytes, the shape needs %d" % (len(raw), size))
        return raw

    # leaf fields: checked by shape first, so they cannot nest

    def leaf(self, x, tag, types):
        if type(x) in types:
            return x
        if type(x) is dict and x.get("$type") == tag:
            return self.tags[tag](x, 0)
        raise ValueDecodeError("expected %s, got %s" % (tag, type(x).__name__))

    def leaf_int(self, x):
        return self.leaf(x, "int", (int,))

    def leaf_float(self, x):
        return float(self.leaf(x, "float", (int, float)))

    def name(self, x, depth):
        v = self.dec(x, depth)
        hash(v)  # a pandas label: TypeError if not hashable
        return v

    # standard types

    def d_int(self, o, depth):
        _fields(o, ("value",))
        s = self.text(_get(o, "value", str))
        if s.lstrip("-").startswith("0x"):
            if not _HEX_INT_RE.fullmatch(s):
                raise ValueDecodeError("int: bad hex digits")
            return int(s, 16)
        if len(s) > _MAX_DEC_DIGITS + 1:
            raise ValueDecodeError("int: more than %d decimal digits" % _MAX_DEC_DIGITS)
        if not _DEC_INT_RE.fullmatch(s):
            raise ValueDecodeError("int: bad decimal digits")
        return int(s)

    def d_float(self, o, depth):
        _fields(o, ("value",))
        v = o["value"]
        if v not in ("nan", "inf", "-inf"):
            raise ValueDecodeError("float: value must be nan, inf or -inf")
        return float(v)

    def d_str(self, o, depth):
        _fields(o, ("b64",))
        return self.b64(o["b64"]).decode("utf-8", "surrogatepass")

    def d_bytes(self, o, depth):
        _fields(o, ("b64",))
        raw = self.b64(o["b64"])
        return raw if o["$type"] == "bytes" else bytearray(raw)

    def d_complex(self, o, depth):
        _fields(o, ("real", "imag"))
        return complex(self.leaf_float(o["real"]), self.leaf_float(o["imag"]))

    def d_seq(self, o, depth):
        _fields(o, ("items",))
        items = _get(o, "items", list)
        self.enter(depth, len(items))
        vals = [self.dec(x, depth + 1) for x in items]
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[o["$type"]](vals)

    def d_dict(self, o, depth):
        _fields(o, ("items",))
        items = _get(o, "items", list)
        self.enter(depth, 2 * len(items))
        out = {}
        for pair in items:
            if type(pair) is not list or len(pair) != 2:
                raise ValueDecodeError("dict: items must be [key, value] pairs")
            k = self.dec(pair[0], depth + 1)
            out[k] = self.dec(pair[1], depth + 1)
        return out

    def d_decimal(self, o, depth):
        _fields(o, ("value",))
        s = self.text(_get(o, "value", str))
        if not _DECIMAL_RE.fullmatch(s):
            raise ValueDecodeError("decimal: bad value")
        return decimal.Decimal(s)

    def d_fraction(self, o, depth):
        _fields(o, ("numerator", "denominator"))
        n, d = self.leaf_int(o["numerator"]), self.leaf_int(o["denominator"])
        if max(n.bit_length(), d.bit_length()) > _MAX_FRACTION_BITS:
            raise ValueDecodeError("fraction: numbers too large")
        return fractions.Fraction(n, d)

    def tz(self, spec):
        if type(spec) is not dict:
            raise ValueDecodeError("tz must be an object")
        if "zone" in spec:
            if set(spec) != {"zone"} or type(spec["zone"]) is not str or not _ZONE_RE.fullmatch(spec["zone"]):
                raise ValueDecodeError("tz: bad zone")
            return spec["zone"]
        if not set(spec) <= {"offset", "name"} or type(spec.get("offset")) is not str:
            raise ValueDecodeError("tz: needs zone or offset")
        m = _OFFSET_RE.fullmatch(spec["offset"])
        if m is None:
            raise ValueDecodeError("tz: bad offset")
        sign, h, mi, s, us = m.groups()
        off = _dt.timedelta(hours=int(h), minutes=int(mi), seconds=int(s or 0), microseconds=int(us or 0))
        off = -off if sign == "-" else off
        if "name" in spec:
            return _dt.timezone(off, self.text(_get(spec, "name", str)))
        return _dt.timezone(off)

    def tzinfo(self, spec):
        tz = self.tz(spec)
        if type(tz) is str:  # a zone key, checked by _ZONE_RE and by zoneinfo
            if zoneinfo is None:
                raise ValueDecodeError("zoneinfo is not available")
            return zoneinfo.ZoneInfo(tz)
        return tz

    def d_clock(self, o, depth):  # datetime or time
        _fields(o, ("value",), ("tz", "fold"))
        cls, pattern = (_dt.datetime, _DATETIME_RE) if o["$type"] == "datetime" else (_dt.time, _TIME_RE)
        m = pattern.fullmatch(_get(o, "value", str))
        if m is None:
            raise ValueDecodeError("%s: bad value" % o["$type"])
        f = o.get("fold", 0)
        if type(f) is not int or f not in (0, 1):
            raise ValueDecodeError("fold must be 0 or 1")
        tz = self.tzinfo(o["tz"]) if "tz" in o else None
        return cls(*[int(x or 0) for x in m.groups()], tzinfo=tz, fold=f)

    def d_date(self, o, depth):
        _fields(o, ("value",))
        m = _DATE_RE.fullmatch(_get(o, "value", str))
        if m is None:
            raise ValueDecodeError("date: bad value")
        return _dt.date(*[int(x) for x in m.groups()])

    def d_timedelta(self, o, depth):
        _fields(o, ("days", "seconds", "microseconds"))
        return _dt.timedelta(days=_get(o, "days", int), seconds=_get(o, "seconds", int),
                             microseconds=_get(o, "microseconds", int))

    def d_uuid(self, o, depth):
        _fields(o, ("value",))
        s = _get(o, "value", str)
        if not _UUID_RE.fullmatch(s):
            raise ValueDecodeError("uuid: bad value")
        return uuid.UUID(s)

    def d_repr(self, o, depth):
        _fields(o, ("type", "value"))
        return RemoteRepr(self.text(_get(o, "value", str)), self.text(_get(o, "type", str)))

    # numpy

    def np_dtype(self, np, name):
        if type(name) is not str or not (name in _NP_NAMES or _NP_TIME_RE.fullmatch(name)):
            raise ValueDecodeError("unsupported dtype %r" % str(name)[:40])
        return np.dtype(name)

    def d_ndarray(self, o, depth):
        np = _need("numpy")
        name, shape = _get(o, "dtype", str), _get(o, "shape", list)
        if len(shape) > _MAX_NDIM or any(type(d) is not int or not 0 <= d <= 1 << 40 for d in shape):
            raise ValueDecodeError("ndarray: bad shape")
        n = math.prod(shape)
        if "data" in o:
            _fields(o, ("dtype", "shape", "data"))
            dt = self.np_dtype(np, name)
            self.count(n * dt.itemsize)  # refused before anything is allocated
            raw = self.b64(o["data"], n * dt.itemsize)
            arr = np.frombuffer(bytearray(raw), dtype=dt.newbyteorder("<"))
            return arr.astype(dt, copy=False).reshape(shape)
        _fields(o, ("dtype", "shape", "items"))
        items = _get(o, "items", list)
        if len(items) != n:
            raise ValueDecodeError("ndarray: %d items for shape %r" % (len(items), shape))
        self.enter(depth, n)
        if name == "object":
            arr = np.empty(n, dtype=object)
            for i, x in enumerate(items):
                arr[i] = self.dec(x, depth + 1)
            return arr.reshape(shape)
        m = _NP_STR_RE.fullmatch(name)
        if m is None:
            raise ValueDecodeError("unsupported dtype %r" % name[:40])
        itemsize = int(m.group(2)) * (4 if m.group(1) == "U" else 1)
        self.count(n * itemsize)
        if itemsize > self.max_str:
            raise ValueDecodeError("ndarray: items longer than %s" % _human(self.max_str))
        dt = np.dtype(name)
        want = str if m.group(1) == "U" else bytes
        vals = [self.dec(x, depth + 1) for x in items]
        if any(type(v) is not want for v in vals):
            raise ValueDecodeError("ndarray: %s items must be %s" % (name, want.__name__))
        return np.array(vals, dtype=dt).reshape(shape) if vals else np.empty(shape, dtype=dt)

    def d_npscalar(self, o, depth):
        np = _need("numpy")
        name = _get(o, "dtype", str)
        if name in ("str_", "bytes_"):
            _fields(o, ("dtype", "value"))
            if name == "str_":
                return np.str_(self.leaf(o["value"], "str", (str,)))
            return np.bytes_(self.leaf(o["value"], "bytes", ()))
        dt = self.np_dtype(np, name)
        k = dt.kind
        if "data" in o:
            _fields(o, ("dtype", "data"))
            if k not in "fc":
                raise ValueDecodeError("npscalar: data only for long doubles")
            return np.frombuffer(self.b64(o["data"], dt.itemsize), dtype=dt.newbyteorder("<")).astype(dt)[0]
        _fields(o, ("dtype", "value"))
        x = o["value"]
        if k == "b":
            if type(x) is not bool:
                raise ValueDecodeError("npscalar: bool value expected")
            return np.bool_(x)
        if k in "iumM":
            v = self.leaf_int(x)
            info = np.iinfo(dt if k in "iu" else "i8")
            if not info.min <= v <= info.max:
                raise ValueDecodeError("npscalar: %d out of range for %s" % (v, name))
            return dt.type(v) if k in "iu" else np.array(v, dtype="i8").view(dt)[()]
        if k == "c" and type(x) is dict and x.get("$type") == "complex":
            return dt.type(self.d_complex(x, depth))
        return dt.type(self.leaf_float(x))

    # pandas

    def nd(self, x, depth, kinds):
        """A 1-d numeric ndarray field."""
        np = _need("numpy")
        if type(x) is not dict or x.get("$type") != "ndarray":
            raise ValueDecodeError("expected an ndarray")
        arr = self.dec(x, depth)
        if not isinstance(arr, np.ndarray) or arr.ndim != 1 or arr.dtype.kind not in kinds:
            raise ValueDecodeError("expected a 1-d array of kind %s" % kinds)
        return arr

    def index(self, x, depth):
        if type(x) is not dict or x.get("$type") not in ("pd.Index", "pd.RangeIndex", "pd.MultiIndex"):
            raise ValueDecodeError("expected a pandas index")
        return self.dec(x, depth)

    def values(self, o, depth, outer):
        """The values of a Series, Index or DataFrame column (see e_values)."""
        pd, np = _need("pandas"), _need("numpy")
        self.enter(depth, 0)
        dtype = _get(o, "dtype", str)
        if dtype == "category":
            _fields(o, outer + ("dtype", "categories", "codes", "ordered"))
            cats = self.index(o["categories"], depth + 1)
            codes = self.nd(o["codes"], depth + 1, "iu")
            cdt = pd.CategoricalDtype(cats, ordered=_get(o, "ordered", bool))
            return pd.Categorical.from_codes(codes, dtype=cdt)
        if "tz" in o:
            _fields(o, outer + ("dtype", "tz", "values"))
            if not dtype.startswith("datetime64["):
                raise ValueDecodeError("tz needs a datetime64 dtype")
            tz = self.tz(o["tz"])
            utc = self.nd(o["values"], depth + 1, "M")
            return pd.DatetimeIndex(utc).tz_localize("UTC").tz_convert(tz).array
        _fields(o, outer + ("dtype", "values"))
        if dtype == "object" or dtype in _PD_EXT:
            vals = _get(o, "values", list)
            self.enter(depth, len(vals))
            arr = np.empty(len(vals), dtype=object)
            for i, x in enumerate(vals):
                arr[i] = self.dec(x, depth + 1)
            return arr if dtype == "object" else pd.array(arr, dtype=dtype)
        arr = self.nd(o["values"], depth + 1, "biufcmM")
        if arr.dtype.name != dtype:
            raise ValueDecodeError("values are %s, dtype says %s" % (arr.dtype.name, dtype[:40]))
        return arr

    def d_series(self, o, depth):
        pd = _need("pandas")
        self.enter(depth, 0)
        arr = self.values(o, depth + 1, ("name", "index"))
        index = self.index(o["index"], depth + 1)
        if len(arr) != len(index):
            raise ValueDecodeError("pd.Series: %d values, %d index labels" % (len(arr), len(index)))
        return pd.Series(arr, index=index, name=self.name(o["name"], depth + 1),
                         dtype=object if o["dtype"] == "object" else None, copy=False)

    def d_index(self, o, depth):
        pd = _need("pandas")
        self.enter(depth, 0)
        arr = self.values(o, depth + 1, ("name",))
        return pd.Index(arr, name=self.name(o["name"], depth + 1), tupleize_cols=False,
                        dtype=object if o["dtype"] == "object" else None)

    def d_range(self, o, depth):
        pd = _need("pandas")
        _fields(o, ("start", "stop", "step", "name"))
        self.enter(depth, 0)
        start, stop, step = (self.leaf_int(o[k]) for k in ("start", "stop", "step"))
        return pd.RangeIndex(start, stop, step, name=self.name(o["name"], depth + 1))

    def d_multi(self, o, depth):
        pd = _need("pandas")
        _fields(o, ("names", "levels", "codes"))
        names, levels, codes = (_get(o, k, list) for k in ("names", "levels", "codes"))
        if not len(names) == len(levels) == len(codes) >= 1:
            raise ValueDecodeError("pd.MultiIndex: names, levels and codes differ in length")
        self.enter(depth, 3 * len(names))
        return pd.MultiIndex(levels=[self.index(x, depth + 1) for x in levels],
                             codes=[self.nd(x, depth + 1, "iu") for x in codes],
                             names=[self.name(x, depth + 1) for x in names], verify_integrity=True)

    def d_frame(self, o, depth):
        pd = _need("pandas")
        _fields(o, ("index", "columns", "data"))
        data = _get(o, "data", list)
        self.enter(depth, len(data))
        index, columns = self.index(o["index"], depth + 1), self.index(o["columns"], depth + 1)
        if len(columns) != len(data):
            raise ValueDecodeError("pd.DataFrame: %d columns, %d labels" % (len(data), len(columns)))
        cols = {}
        for i, c in enumerate(data):
            if type(c) is not dict:
                raise ValueDecodeError("pd.DataFrame: a column must be an object")
            arr = self.values(c, depth + 1, ())
            if len(arr) != len(index):
                raise ValueDecodeError("pd.DataFrame: column of %d values, %d index labels" % (len(arr), len(index)))
            # An explicit object dtype: pandas would otherwise infer dates.
            cols[i] = pd.Series(arr, dtype=object if c["dtype"] == "object" else None, copy=False)
        if not cols:
            return pd.DataFrame(index=index, columns=columns)
        df = pd.DataFrame(cols, copy=False)
        df.index, df.columns = index, columns
        return df

    def d_timestamp(self, o, depth):
        pd = _need("pandas")
        _fields(o, ("value",), ("tz",))
        s = _get(o, "value", str)
        if not _TS_RE.fullmatch(s):
            raise ValueDecodeError("pd.Timestamp: bad value")
        ts = pd.Timestamp(s)
        return ts.tz_localize("UTC").tz_convert(self.tz(o["tz"])) if "tz" in o else ts

    def d_pdtimedelta(self, o, depth):
        pd = _need("pandas")
        keys = ("days", "seconds", "microseconds", "nanoseconds")
        _fields(o, keys)
        return pd.Timedelta(**{k: _get(o, k, int) for k in keys})

    def d_pdconst(self, o, depth):
        pd = _need("pandas")
        _fields(o, ())
        return pd.NaT if o["$type"] == "pd.NaT" else pd.NA


def decode(obj, *, max_depth=None, max_items=None, max_bytes=None, max_str=None):
    """An object from json.loads -> the value (docs/values.md).

    Produces only the types the format lists; raises ValueDecodeError for
    anything else, including input over the limits."""
    d = _Decoder(*_limits(max_depth, max_items, max_bytes, max_str))
    try:
        return d.dec(obj, 0)
    except ValueDecodeError:
        raise
    except RecursionError:
        raise ValueDecodeError("value nested too deeply for the stack") from None
    except Exception as exc:
        raise ValueDecodeError("cannot decode value: %s: %s" % (type(exc).__name__, str(exc)[:200])) from None
