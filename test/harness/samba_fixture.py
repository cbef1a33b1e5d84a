"""Loads users and groups into a freshly provisioned (not yet running) Samba AD DC, offline,
through Samba's own Python API (what samba-tool uses), in one transaction. Run with Debian's
/usr/bin/python3.

stdin: {"smbConf": path, "bindUser": name, "users": [...], "groups": [...]} (see test/harness/samba.ts).
stdout: {"domainSid": ..., "objects": {name: {"dn": ..., "sid": ...}}}
"""
import json
import sys

import ldb
from samba.auth import system_session
from samba.dsdb import GTYPE_DISTRIBUTION_GLOBAL_GROUP
from samba.param import LoadParm
from samba.samdb import SamDB
from samba.sd_utils import SDUtils

# schemaIDGUID of the tokenGroups attribute (MS-ADA3 2.331).
TOKEN_GROUPS_GUID = "b7c69e6d-2cc7-11d2-854e-00a0c983f608"


def main():
    spec = json.load(sys.stdin)
    lp = LoadParm()
    lp.load(spec["smbConf"])
    samdb = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp)
    # One transaction for the whole fixture: hundreds of groups load in seconds, not minutes.
    samdb.transaction_start()
    try:
        load(samdb, spec, lp.get("workgroup").lower())
    except BaseException:
        samdb.transaction_cancel()
        raise
    samdb.transaction_commit()

    names = [u["name"] for u in spec.get("users", [])] + [g["name"] for g in spec.get("groups", [])]
    names += spec.get("lookup", [])
    json.dump({"domainSid": str(samdb.get_domain_sid()),
               "objects": {name: find(samdb, name) for name in names}}, sys.stdout)


def load(samdb, spec, nis_domain):
    for group in spec.get("groups", []):
        samdb.newgroup(group["name"], gidnumber=group.get("gidNumber"),
                       grouptype=GTYPE_DISTRIBUTION_GLOBAL_GROUP if group.get("distribution") else None,
                       nisdomain=nis_domain if group.get("gidNumber") is not None else None)

    bind_sid = None
    for user in spec.get("users", []):
        rfc2307 = user.get("uidNumber") is not None
        samdb.newuser(user["name"], user["password"], givenname=user.get("givenName"),
                      surname=user.get("surname"), mailaddress=user.get("mail"),
                      uidnumber=user.get("uidNumber"), gidnumber=user.get("gidNumber"),
                      unixhome=user.get("unixHome"), loginshell=user.get("loginShell"),
                      nisdomain=nis_domain if rfc2307 else None)
        dn = find(samdb, user["name"])["dn"]
        if user["name"] == spec.get("bindUser"):
            bind_sid = find(samdb, user["name"])["sid"]
        if user.get("userPrincipalName"):
            replace(samdb, dn, "userPrincipalName", user["userPrincipalName"])
        if user.get("disabled"):
            samdb.disable_account("(sAMAccountName=%s)" % ldb.binary_encode(user["name"]))
        if user.get("hideTokenGroups"):
            # A deny ACE (object ACE, read property tokenGroups) for the bind account on this entry.
            if bind_sid is None:
                raise SystemExit("fixture: hideTokenGroups needs the bind user created first")
            SDUtils(samdb).dacl_add_ace(dn, "(OD;;RP;%s;;%s)" % (TOKEN_GROUPS_GUID, bind_sid))

    for group in spec.get("groups", []):
        if group.get("members"):
            samdb.add_remove_group_members(group["name"], group["members"], add_members_operation=True)


def find(samdb, name):
    res = samdb.search(base=samdb.domain_dn(), scope=ldb.SCOPE_SUBTREE,
                       expression="(sAMAccountName=%s)" % ldb.binary_encode(name),
                       attrs=["objectSid"])
    if len(res) != 1:
        raise SystemExit("fixture: %d entries for %s" % (len(res), name))
    sid = samdb.schema_format_value("objectSid", res[0]["objectSid"][0])
    return {"dn": str(res[0].dn), "sid": sid.decode() if isinstance(sid, bytes) else str(sid)}


def replace(samdb, dn, attribute, value):
    msg = ldb.Message(ldb.Dn(samdb, dn))
    msg[attribute] = ldb.MessageElement(value, ldb.FLAG_MOD_REPLACE, attribute)
    samdb.modify(msg)


if __name__ == "__main__":
    main()
