"""`interfaces show` says where each vif is bound: the `binding` the API returns
(`{state, datapath_uuid, port_name, claims: [{datapath_uuid, state, detail}]}`) as one
column, e.g. `dp-2:vm1`, `unbound`, `dp-1:vm1; standby on dp-2`,
`unbound; refused on dp-2 (owner_datapath_uuid is dp-1)`."""

from __future__ import annotations

from typing import Any

from vnctl.output import Row, ShowExtra


def _claim(claim: dict[str, Any]) -> str:
    detail = f" ({claim['detail']})" if claim.get("detail") else ""
    return f"{claim.get('state')} on {claim.get('datapath_uuid')}{detail}"


def display(row: Row) -> Row:
    binding = row.get("binding")
    if not isinstance(binding, dict):  # not a vif: bound by its owner, not by a port
        return {"bound_to": None}
    if binding.get("state") == "bound":
        where = f"{binding.get('datapath_uuid')}:{binding.get('port_name') or '?'}"
        if binding.get("detail"):
            where += f" ({binding['detail']})"
    else:
        where = "unbound"
    return {"bound_to": "; ".join([where, *(_claim(c) for c in binding.get("claims", []))])}


BINDING = ShowExtra(("bound_to",), lambda _client, rows: rows, display)
