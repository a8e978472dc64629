"""Alert changes as a person reads them in a terminal."""

from __future__ import annotations

from collections import Counter

from riskwatch.units import reading

COLOURS = {"red": "\033[1;31m", "orange": "\033[38;5;208m", "yellow": "\033[33m", "blue": "\033[36m"}
DIM, RESET = "\033[2m", "\033[0m"


def alert_line(record: dict, colour: bool = True) -> str:
    """One alert change record (docs/contracts-internal.md) as one terminal
    line: tier, when, change, indicator, subject, the observed value against
    its threshold ("72 h 5 min > 72 h", `riskwatch.units.reading`), owner,
    respond-by and the first playbook step; resolved changes dimmed."""
    tier = record["tier"]
    tag = f"{tier.upper():<6}"
    subject = record["subject"]
    about = f"{subject['kind']} {subject['id']}"
    if subject.get("customer_id") and subject["customer_id"] != subject["id"]:
        about += f" ({subject['customer_id']})"
    observed = reading(record["observed"], record["threshold"], record["unit"],
                       record.get("direction") or "above").comparison()
    when = (record.get("updated_at") or record["raised_at"] or "")[:16].replace("T", " ")
    if record["status"] == "resolved":
        text = f"{tag} {when}  resolved  {record['indicator']:<22} {about}  {observed}  ({record.get('resolution') or 'cleared'})"
        return f"{DIM}{text}{RESET}" if colour else text
    steps = record["playbook"]["steps"]
    first = f"→ {steps[0]['action']} [{steps[0]['owner']}, by {steps[0]['due_at'][:16].replace('T', ' ')}]" if steps else ""
    change = record["change"].replace("_", " ")
    text = (f"{tag} {when}  {change:<9} {record['indicator']:<22} {about}  {observed}  "
            f"owner {record['owner']}, respond by {record['respond_by'][:16].replace('T', ' ')}  {first}")
    if colour:
        return f"{COLOURS[tier]}{tag}{RESET}{text[len(tag):]}"
    return text


def summary_lines(records: int, accepted: int, rejected: Counter, raised: Counter, resolved: Counter,
                  open_by_tier: Counter, duplicates: int, late: int) -> list[str]:
    tiers = ("red", "orange", "yellow", "blue")
    lines = [
        f"events: {records} read, {accepted} accepted, {sum(rejected.values())} rejected, {duplicates} duplicates, {late} late",
        "alerts raised:   " + ", ".join(f"{t} {raised.get(t, 0)}" for t in tiers),
        "alerts resolved: " + ", ".join(f"{t} {resolved.get(t, 0)}" for t in tiers),
        "alerts open:     " + ", ".join(f"{t} {open_by_tier.get(t, 0)}" for t in tiers),
    ]
    if rejected:
        lines.append("rejected by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(rejected.items())))
    return lines
