"""Monitoring of migration (§4, §7, §8), derived from registration and relocation events.

§4: arrivals, departures and net migration by district, month and category. An approved
registration is an arrival into its district; an ended one a departure from it; a
person registering in another district of the city moves internally (a departure and an
arrival, which cancel out city-wide). Kandases and settlers are counted when their
relocation case records their arrival (§6); the registrations opened for them are then
not counted a second time. §7: a period whose net outflow exceeds the natural-growth
figure entered for it raises a signal. §8: residents by district and age band.

Events are matched by class name, so cases added later feed in when they use these
names, and unknown events are ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from infra.sql import Cursor, Database
from projections.erasure import ERASURE_EVENT, erase_monitoring

NAME = "monitoring"
CATEGORIES = ("immigration", "emigration", "internal", "kandas", "settler", "foreign_labour")
DEPARTURE_EVENTS = frozenset({"Ended", "Deregistered", "Expired", "Terminated"})
_LABOUR = ("labour", "labor", "work", "employment")
_ABROAD = ("left_country", "abroad", "emigrat")
_DEATH = ("death", "died", "deceased")

# §8 plans kindergartens, schools and clinics: 0-6 are preschool (kindergarten places),
# 7-17 school age, 18-34 and 35-62 the working ages (young adults weigh most in §7's
# measures), 63+ the pension age, whose need for clinics differs most.
AGE_BANDS = (("0-6", 0, 6), ("7-17", 7, 17), ("18-34", 18, 34), ("35-62", 35, 62),
             ("63+", 63, 10_000))
UNKNOWN_AGE = "unknown"
_CENTURY = {"1": 1800, "2": 1800, "3": 1900, "4": 1900, "5": 2000, "6": 2000}


def age_band(birth_date: dt.date | None, on: dt.date) -> str:
    if birth_date is None or birth_date > on:
        return UNKNOWN_AGE
    age = on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    return next(label for label, low, high in AGE_BANDS if low <= age <= high)


def birth_date_of(person: dict[str, Any]) -> str | None:
    """From the IIN (its first six digits and century digit), else a stated birth date;
    None when neither is readable (an erased data subject)."""
    iin = str(person.get("iin") or "")
    if len(iin) == 12 and iin.isdigit() and iin[6] in _CENTURY:
        # The register was validated on entry; only the date digits matter here.
        try:
            return dt.date(_CENTURY[iin[6]] + int(iin[:2]), int(iin[2:4]),
                           int(iin[4:6])).isoformat()
        except ValueError:
            pass
    raw = person.get("birth_date")
    return str(raw) if raw else None


def _mentions(value: Any, words: tuple[str, ...]) -> bool:
    text = str(value).lower()
    return any(w in text for w in words)


def arrival_category(application: dict[str, Any]) -> str:
    """A citizen comes from elsewhere in the country (internal flow); a foreigner or a
    stateless person immigrates, or comes to work when the registration says so."""
    person = application.get("person") or {}
    if person.get("kind", "citizen") == "citizen":
        return "internal"
    purpose = [application.get(k) for k in ("purpose", "grounds")] + [
        person.get(k) for k in ("purpose", "work_permit")
    ]
    return "foreign_labour" if any(p and _mentions(p, _LABOUR) for p in purpose) else (
        "immigration"
    )


def departure_category(event: Any) -> str | None:
    """Leaving the country is emigration; a death is no migration (None); any other end
    of a registration is a move inside the country."""
    said = [v for k, v in vars(event).items() if k in ("reason", "ground", "grounds",
                                                         "cause", "destination")]
    if any(_mentions(v, _ABROAD) for v in said):
        return "emigration"
    if any(_mentions(v, _DEATH) for v in said):
        return None
    return "internal"


class MonitoringProjection:
    name = NAME
    handles = ("RegistrationCase.", "RelocationCase.", "NaturalGrowthFigure.", ERASURE_EVENT)
    ddl = (
        """CREATE TABLE IF NOT EXISTS monitoring_flows (
            district TEXT NOT NULL,
            month TEXT NOT NULL,
            category TEXT NOT NULL,
            arrivals BIGINT NOT NULL,
            departures BIGINT NOT NULL,
            PRIMARY KEY (district, month, category)
        )""",
        """CREATE TABLE IF NOT EXISTS monitoring_registrations (
            case_id TEXT PRIMARY KEY,
            person_key TEXT NOT NULL,
            district TEXT NOT NULL,
            birth_date TEXT,
            category TEXT NOT NULL,
            arrival_month TEXT,
            counted INTEGER NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS monitoring_residents (
            person_key TEXT PRIMARY KEY,
            case_id TEXT NOT NULL,
            district TEXT NOT NULL,
            birth_date TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS monitoring_residents_by_district "
        "ON monitoring_residents (district)",
        """CREATE TABLE IF NOT EXISTS monitoring_relocations (
            case_id TEXT PRIMARY KEY,
            category TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS monitoring_settled (
            registration_case_id TEXT PRIMARY KEY,
            relocation_case_id TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS monitoring_natural_growth (
            period TEXT PRIMARY KEY,
            natural_growth BIGINT NOT NULL,
            source TEXT NOT NULL,
            seq BIGINT NOT NULL
        )""",
    )

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[[Cursor, int, Any], None]] = {
            "RegistrationCase.Submitted": self._registration_submitted,
            "RegistrationCase.Approved": self._registration_approved,
            "RelocationCase.Applied": self._relocation_applied,
            "RelocationCase.Arrived": self._relocation_arrived,
            "RelocationCase.MemberRegistered": self._member_registered,
            "NaturalGrowthFigure.Recorded": self._natural_growth,
            "NaturalGrowthFigure.Revised": self._natural_growth,
        }

    def rebuilder(self) -> Any:
        """Applies a rebuild's batches through write-back caches (same rows)."""
        from projections.monitoring_rebuild import MonitoringRebuild

        return MonitoringRebuild(self)

    def apply(self, cur: Cursor, seq: int, event: Any) -> None:
        kind = type(event).__qualname__
        handler = self._handlers.get(kind)
        if kind == ERASURE_EVENT:
            erase_monitoring(cur, event.subject_id)
        elif handler is not None:
            handler(cur, seq, event)
        elif kind.startswith("RegistrationCase.") and type(event).__name__ in DEPARTURE_EVENTS:
            self._registration_ended(cur, seq, event)

    # -- registrations (§9) --------------------------------------------------------------
    def _registration_submitted(self, cur: Cursor, seq: int, e: Any) -> None:
        application = {k: getattr(e, k, None) for k in ("person", "purpose", "grounds")}
        person = e.person or {}
        cur.execute(
            "INSERT INTO monitoring_registrations (case_id, person_key, district, birth_date, "
            "category, arrival_month, counted) VALUES (?, ?, ?, ?, ?, NULL, 0) "
            "ON CONFLICT (case_id) DO NOTHING",
            (str(e.originator_id), _person_key(person), e.address["district"],
             birth_date_of(person), arrival_category(application)),
        )

    def _registration_approved(self, cur: Cursor, seq: int, e: Any) -> None:
        case_id = str(e.originator_id)
        # The settled link is read in the same statement (a rebuild runs it per case).
        cur.execute("SELECT r.person_key, r.district, r.birth_date, r.category, "
                    "s.registration_case_id IS NULL FROM monitoring_registrations r "
                    "LEFT JOIN monitoring_settled s ON s.registration_case_id = r.case_id "
                    "WHERE r.case_id = ?", (case_id,))
        row = cur.fetchone()
        if row is None:
            return  # submitted before monitoring existed: nothing to count it by
        person_key, district, birth_date, category, unsettled = row
        month = _month(e)
        cur.execute("SELECT case_id, district FROM monitoring_residents WHERE person_key = ?",
                    (person_key,))
        previous = cur.fetchone()
        if previous is not None and previous[0] != case_id:
            # §4 internal flow: a resident re-registers elsewhere in the city.
            _count(cur, previous[1], month, "internal", departures=1)
            category = "internal"
        counted = bool(unsettled)  # else the relocation's arrival counted them
        if counted:
            _count(cur, district, month, category, arrivals=1)
        cur.execute("UPDATE monitoring_registrations SET category = ?, arrival_month = ?, "
                    "counted = ? WHERE case_id = ?", (category, month, int(counted), case_id))
        cur.execute(
            "INSERT INTO monitoring_residents (person_key, case_id, district, birth_date) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (person_key) DO UPDATE SET "
            "case_id = excluded.case_id, district = excluded.district, "
            "birth_date = excluded.birth_date",
            (person_key, case_id, district, birth_date),
        )

    def _registration_ended(self, cur: Cursor, seq: int, e: Any) -> None:
        if getattr(e, "superseded_by", None):
            # Ended by a new permanent registration in the same decision: that approval
            # counts the internal move. Counting here too would depend on which of the two
            # events (on different partitions) arrives first.
            return
        case_id = str(e.originator_id)
        cur.execute("SELECT person_key, district FROM monitoring_residents WHERE case_id = ?",
                    (case_id,))
        row = cur.fetchone()
        if row is None:
            return  # not the person's current registration: no one leaves
        category = departure_category(e)
        if category is not None:
            _count(cur, row[1], _month(e), category, departures=1)
        cur.execute("DELETE FROM monitoring_residents WHERE case_id = ?", (case_id,))

    # -- relocations (§6) ----------------------------------------------------------------
    def _relocation_applied(self, cur: Cursor, seq: int, e: Any) -> None:
        cur.execute("INSERT INTO monitoring_relocations (case_id, category) VALUES (?, ?) "
                    "ON CONFLICT (case_id) DO NOTHING", (str(e.originator_id), e.category))

    def _relocation_arrived(self, cur: Cursor, seq: int, e: Any) -> None:
        cur.execute("SELECT category FROM monitoring_relocations WHERE case_id = ?",
                    (str(e.originator_id),))
        row = cur.fetchone()
        if row is not None:
            _count(cur, e.address["district"], _month(e), row[0], arrivals=int(e.persons))

    def _member_registered(self, cur: Cursor, seq: int, e: Any) -> None:
        reg_case = str(e.registration_case_id)
        cur.execute("INSERT INTO monitoring_settled (registration_case_id, relocation_case_id) "
                    "VALUES (?, ?) ON CONFLICT DO NOTHING", (reg_case, str(e.originator_id)))
        cur.execute("SELECT district, arrival_month, category FROM monitoring_registrations "
                    "WHERE case_id = ? AND counted = 1", (reg_case,))
        row = cur.fetchone()
        if row is not None:  # approved before the link was recorded: count them once
            _count(cur, row[0], row[1], row[2], arrivals=-1)
            cur.execute("UPDATE monitoring_registrations SET counted = 0 WHERE case_id = ?",
                        (reg_case,))

    # -- §7 natural growth ---------------------------------------------------------------
    def _natural_growth(self, cur: Cursor, seq: int, e: Any) -> None:
        cur.execute(
            "INSERT INTO monitoring_natural_growth (period, natural_growth, source, seq) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (period) DO UPDATE SET "
            "natural_growth = excluded.natural_growth, source = excluded.source, "
            "seq = excluded.seq",
            (e.period, int(e.natural_growth), e.source, seq),
        )


def _person_key(person: dict[str, Any]) -> str:
    if person.get("iin"):
        return str(person["iin"])
    return f"{person.get('document_type') or 'document'}:{person.get('document_number')}"


def _month(e: Any) -> str:
    meta = getattr(e, "meta", None) or {}
    effective = meta.get("effective_date") or e.timestamp.date().isoformat()
    return str(effective)[:7]


def _count(cur: Cursor, district: str, month: str, category: str, arrivals: int = 0,
           departures: int = 0) -> None:
    cur.execute(
        "INSERT INTO monitoring_flows (district, month, category, arrivals, departures) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (district, month, category) DO UPDATE SET "
        "arrivals = monitoring_flows.arrivals + excluded.arrivals, "
        "departures = monitoring_flows.departures + excluded.departures",
        (district, month, category, arrivals, departures),
    )
    if arrivals < 0 or departures < 0:
        # A count taken back leaves no row of zeros: events of different cases reach the
        # live register in partition order, a rebuild in store order, and only then do
        # both hold the same rows.
        cur.execute(
            "DELETE FROM monitoring_flows WHERE district = ? AND month = ? AND category = ? "
            "AND arrivals = 0 AND departures = 0", (district, month, category),
        )


class MonitoringRegister:
    """Queries over the monitoring register (live, or rebuilt as of a date)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def flows(self, district: str | None = None, month: str | None = None,
              category: str | None = None) -> list[dict[str, Any]]:
        """`month` is 2024-03, or a year 2024 for all its months."""
        # A count moved to a relocation's arrival leaves a row of zeros: not a flow.
        where, params = ["(arrivals <> 0 OR departures <> 0)"], []
        if district:
            where.append("district = ?")
            params.append(district)
        if month:
            where.append("(month = ? OR month LIKE ?)")
            params += [month, f"{month}-%"]
        if category:
            where.append("category = ?")
            params.append(category)
        rows = self.db.query(
            "SELECT district, month, category, arrivals, departures FROM monitoring_flows "
            f"WHERE {' AND '.join(where)} ORDER BY month, district, category", params,
        )
        return [{"district": r[0], "month": r[1], "category": r[2], "arrivals": int(r[3]),
                 "departures": int(r[4]), "net": int(r[3]) - int(r[4])} for r in rows]

    def age_bands(self, on: dt.date, district: str | None = None) -> list[dict[str, Any]]:
        """Residents registered now, by district and age band on `on` (§8)."""
        sql = "SELECT district, birth_date FROM monitoring_residents"
        rows = self.db.query(sql + " WHERE district = ?", (district,)) if district else (
            self.db.query(sql))
        counts: dict[tuple[str, str], int] = {}
        for d, born in rows:
            band = age_band(dt.date.fromisoformat(born) if born else None, on)
            counts[(d, band)] = counts.get((d, band), 0) + 1
        order = {label: i for i, (label, _, _) in enumerate(AGE_BANDS)}
        return [{"district": d, "age_band": b, "residents": n}
                for (d, b), n in sorted(counts.items(),
                                        key=lambda kv: (kv[0][0], order.get(kv[0][1], 99)))]

    def periods(self) -> list[dict[str, Any]]:
        """§7 for every period with a natural-growth figure: its net outflow, and whether
        that outflow exceeds the figure (a signal). Moves inside the city cancel out."""
        out = []
        for period, growth, source in self.db.query(
            "SELECT period, natural_growth, source FROM monitoring_natural_growth "
            "ORDER BY period"
        ):
            arrivals, departures = self.db.query(
                "SELECT COALESCE(SUM(arrivals), 0), COALESCE(SUM(departures), 0) "
                "FROM monitoring_flows WHERE month = ? OR month LIKE ?",
                (period, f"{period}-%"),
            )[0]
            outflow = int(departures) - int(arrivals)
            out.append({
                "period": period, "natural_growth": int(growth), "source": source,
                "arrivals": int(arrivals), "departures": int(departures),
                "net_outflow": outflow,
                # No outflow, no signal, even when deaths outnumber births.
                "signal": outflow > 0 and outflow > int(growth),
            })
        return out

    def signals(self) -> list[dict[str, Any]]:
        return [p for p in self.periods() if p["signal"]]
