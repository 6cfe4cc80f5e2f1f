"""Test data for .ci/openapi-fuzz, read from a running `tuangou serve --demo`.

Signs in the demo's operator, its merchant owner and one of its customers (bearer tokens, one file each), and
writes a schemathesis configuration whose dictionaries hold ids that exist (stores, live campaigns, groups, users,
vouchers, voucher codes, customers' phones): generated requests then reach past "unknown id" into the use cases
about half of the time, and are random the rest of the time.

    python3 .ci/openapi-fuzz-data.py BASE_URL OUT_DIR
"""

import json
import sys
import urllib.request

PASSWORD = "tuangou-demo"
OPERATOR, OWNER, CUSTOMER = "13800000000", "13800000001", "13900000001"
CUSTOMERS = [f"139000000{i:02d}" for i in range(1, 8)]


def call(base, path, token=None, body=None):
    request = urllib.request.Request(base + path, method="POST" if body is not None else "GET")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    data = None
    if body is not None:
        request.add_header("Content-Type", "application/json")
        data = json.dumps(body).encode()
    with urllib.request.urlopen(request, data, timeout=30) as response:
        return json.load(response)


def sign_in(base, phone):
    return call(base, "/api/v1/sessions", body={"phone": phone, "password": PASSWORD})["token"]


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in sorted(set(values))) + "]"


def main():
    base, out = sys.argv[1].rstrip("/"), sys.argv[2]
    tokens = {name: sign_in(base, phone) for name, phone in
              [("operator", OPERATOR), ("owner", OWNER), ("customer", CUSTOMER)]}
    for name, token in tokens.items():
        with open(f"{out}/{name}.token", "w") as f:
            f.write(token)

    campaigns = call(base, "/api/v1/campaigns?limit=200")["items"]
    merchants = [c["merchant_id"] for c in campaigns]
    users, groups, vouchers, codes = [], [], [], []
    for phone in CUSTOMERS:
        token = tokens["customer"] if phone == CUSTOMER else sign_in(base, phone)
        users.append(call(base, "/api/v1/me", token)["id"])
        groups += [m["group_id"] for m in call(base, "/api/v1/me/memberships?limit=200", token)["items"]]
        for voucher in call(base, "/api/v1/me/vouchers?limit=200", token)["items"]:
            codes.append(voucher["code"])
            if phone == CUSTOMER:
                vouchers.append(voucher["id"])
    if not (campaigns and groups and vouchers and codes):
        sys.exit("the demo has no campaigns, groups or vouchers to fuzz with")

    half = "probability = 0.5"
    config = f"""# Written by .ci/openapi-fuzz-data.py from the demo city this run serves.
[dictionaries]
merchants = {{ values = {toml_list(merchants)} }}
campaigns = {{ values = {toml_list(c["id"] for c in campaigns)} }}
groups = {{ values = {toml_list(groups)} }}
users = {{ values = {toml_list(users)} }}
vouchers = {{ values = {toml_list(vouchers)} }}
codes = {{ values = {toml_list(codes)} }}
phones = {{ values = {toml_list(CUSTOMERS)} }}

[[operations]]
include-path-regex = "^/api/v1/merchants/\\\\{{id\\\\}}/vouchers/"
parameters = {{ "path.id" = {{ dictionary = "merchants", {half} }}, "path.code" = {{ dictionary = "codes", {half} }} }}

[[operations]]
include-path-regex = "^/api/v1/merchants/\\\\{{id\\\\}}/redemptions$"
parameters = {{ "path.id" = {{ dictionary = "merchants", {half} }}, "body.code" = {{ dictionary = "codes", {half} }} }}

[[operations]]
include-path-regex = "^/api/v1/merchants/\\\\{{id\\\\}}/staff$"
parameters = {{ "path.id" = {{ dictionary = "merchants", {half} }}, "body.phone" = {{ dictionary = "phones", {half} }} }}

[[operations]]
include-path-regex = "^/api/v1/(admin/)?merchants/\\\\{{id\\\\}}"
parameters = {{ "path.id" = {{ dictionary = "merchants", {half} }} }}

[[operations]]
include-path-regex = "^/api/v1/campaigns/\\\\{{id\\\\}}"
parameters = {{ "path.id" = {{ dictionary = "campaigns", {half} }} }}

[[operations]]
include-path-regex = "^/api/v1/groups/\\\\{{id\\\\}}"
parameters = {{ "path.id" = {{ dictionary = "groups", {half} }} }}

[[operations]]
include-path-regex = "^/api/v1/me/vouchers/\\\\{{id\\\\}}"
parameters = {{ "path.id" = {{ dictionary = "vouchers", {half} }} }}

[[operations]]
include-operation-id = "credit"
parameters = {{ "body.user_id" = {{ dictionary = "users", {half} }}, "body.merchant_id" = {{ dictionary = "merchants", {half} }} }}
"""
    with open(f"{out}/schemathesis.toml", "w") as f:
        f.write(config)
    print(f"test data: {len(set(merchants))} stores, {len(campaigns)} live campaigns, {len(set(groups))} groups, "
          f"{len(users)} customers, {len(vouchers)} vouchers, {len(codes)} codes")


if __name__ == "__main__":
    main()
