"""Reference values from SSSD's own code, for idmap.test.ts.

Reads JSON on stdin: {"options": {...}, "hash": [strings], "map": [SIDs]}. Prints JSON:
{"hash": [pysss_murmur.murmurhash3(s, len, 0xdeadbeef)], "map": [id or error name]}.
The ids come from libsss_idmap (SSSD's ID-mapping library) driven like SSSD's LDAP provider does
(sdap_idmap_init / sdap_idmap_add_domain / sdap_idmap_sid_to_unix): SIDs are mapped in the order
given, a domain is added (slice hashed, helper table of secondary slices pre-computed) the first
time one of its SIDs is seen, and ldap_idmap_default_domain_sid, when set, gets slice 0.
Run with Debian's /usr/bin/python3 (python3-sss and libsss-idmap0, see scripts/test-deps).
"""
import ctypes
import json
import sys

import pysss_murmur

ERRORS = ["SUCCESS", "NOT_IMPLEMENTED", "ERROR", "OUT_OF_MEMORY", "NO_DOMAIN", "CONTEXT_INVALID",
          "SID_INVALID", "SID_UNKNOWN", "NO_RANGE", "BUILTIN_SID", "OUT_OF_SLICES", "COLLISION",
          "EXTERNAL", "NAME_UNKNOWN", "NO_REVERSE"]


class Range(ctypes.Structure):
    _fields_ = [("min", ctypes.c_uint32), ("max", ctypes.c_uint32)]


def main():
    request = json.load(sys.stdin)
    opts = request.get("options", {})
    lib = ctypes.CDLL("libsss_idmap.so.0")
    ctx = ctypes.c_void_p()
    check(lib.sss_idmap_init(None, None, None, ctypes.byref(ctx)))
    check(lib.sss_idmap_ctx_set_autorid(ctx, ctypes.c_bool(opts.get("autoridCompat", False))))
    check(lib.sss_idmap_ctx_set_lower(ctx, ctypes.c_uint32(opts.get("rangeMin", 200000))))
    check(lib.sss_idmap_ctx_set_upper(ctx, ctypes.c_uint32(opts.get("rangeMax", 2000200000))))
    check(lib.sss_idmap_ctx_set_rangesize(ctx, ctypes.c_uint32(opts.get("rangeSize", 200000))))
    check(lib.sss_idmap_ctx_set_extra_slice_init(ctx, ctypes.c_int(opts.get("helperTableSize", 10))))

    def add_domain(name, sid, slice_num):
        slice_ = ctypes.c_uint32(slice_num & 0xFFFFFFFF)
        rng = Range()
        err = lib.sss_idmap_calculate_range(ctx, sid.encode(), ctypes.byref(slice_), ctypes.byref(rng))
        if err != 0:
            return err
        return lib.sss_idmap_add_auto_domain_ex(ctx, name.encode(), sid.encode(), ctypes.byref(rng),
                                                None, ctypes.c_uint32(0), ctypes.c_bool(False), None, None)

    default_sid = opts.get("defaultDomainSid")
    if default_sid:
        check(add_domain(opts.get("defaultDomainName", default_sid), default_sid, 0))

    def sid_to_unix(sid):
        out = ctypes.c_uint32()
        err = lib.sss_idmap_sid_to_unix(ctx, sid.encode(), ctypes.byref(out))
        if ERRORS[err] == "NO_DOMAIN" and sid.startswith("S-1-5-21-") and sid.count("-") == 7:
            dom_sid = sid.rsplit("-", 1)[0]
            err = add_domain(dom_sid, dom_sid, -1)
            if err == 0:
                err = lib.sss_idmap_sid_to_unix(ctx, sid.encode(), ctypes.byref(out))
        return out.value if err == 0 else ERRORS[err]

    json.dump({
        "hash": [pysss_murmur.murmurhash3(s, len(s.encode()), 0xDEADBEEF) for s in request.get("hash", [])],
        "map": [sid_to_unix(s) for s in request.get("map", [])],
    }, sys.stdout)


def check(err):
    if err != 0:
        raise SystemExit("libsss_idmap call failed: " + ERRORS[err])


if __name__ == "__main__":
    main()
