"""The cast of `dash demo`: three cohorts, four unit teams, their people and what they will do.

Pure data. dash.app.demo.simulation turns it into simulated people who type into the console channel; what
they type is input to the product (the way nurses really answer: bare counts, a day named when
late, number words, swapped numbers), never text the product itself shows.

Days are Dash days: 0 is the cohort's first day (a Monday), -3..-1 the baseline days before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time

#: The first day of every demo cohort: a fixed Monday keeps a seeded run identical.
DEMO_START = date(2026, 11, 9)
#: The day key contacts enrol, relative to the start (members join the day after).
ENROL_DAY = -5


@dataclass(frozen=True)
class Someone:
    """A person with a console address (an E.164-looking number, as a phone would have)."""

    name: str
    address: str


@dataclass(frozen=True)
class Cycle:
    """A PDSA cycle: the four plan answers, then what the team reports the day after the test.

    `act` is adopt, adapt or abandon. After "adopt" the team sends `story` (or SKIP); after
    "adapt" the next Cycle of the team is planned at once (its `plan_day` is ignored).
    """

    plan_day: int
    plan_at: time
    change: str
    prediction: str
    who_where_when: str
    measure: str
    do: str
    study: str
    act: str
    story: str = "SKIP"


@dataclass(frozen=True)
class Note:
    """Free text someone sends their coach on a day at a local time."""

    day: int
    at: time
    who: str  # "contact", "leader" or a member's name
    text: str


@dataclass(frozen=True)
class TeamCast:
    key: str
    organisation: str
    unit: str
    contact: Someone
    leader: Someone
    leader_title: str
    members: tuple[Someone, ...]  # the first to join becomes the team's data reporter
    matrix: tuple[int, int, int, int, int]
    shares: bool
    # Counts: how likely a dose/patient is done right before and after the team's changes.
    before: tuple[float, ...]
    after: tuple[float, ...]
    improves_from: int  # the Dash day the tested change starts to show
    # Days (Dash day -> how the reporter answers): late, missed, words, over, correct.
    habits: dict[int, str] = field(default_factory=dict)
    cycles: tuple[Cycle, ...] = ()
    notes: tuple[Note, ...] = ()
    stop: tuple[str, int, time] | None = None  # (member name, day, local time) of a STOP
    chart_day: int | None = None  # a day the key contact asks for the run chart
    help_day: int | None = None  # a day a member asks for HELP
    rating: tuple[float, str] = (2.5, "")  # the coach's rating at the end, with a comment
    coach_replies: tuple[str, ...] = ()


@dataclass(frozen=True)
class CohortCast:
    key: str
    topic: str
    timezone: str
    name: str
    coach: Someone
    coach_email: str
    teams: tuple[TeamCast, ...]


OPIOID = CohortCast(
    key="opioid",
    topic="opioid-safety",
    timezone="America/New_York",
    name="Opioid safety – Northeast, November",
    coach=Someone("Dana Whitfield", ""),
    coach_email="dana.whitfield@demo.invalid",
    teams=(
        TeamCast(
            key="5west",
            organisation="Riverside General Hospital",
            unit="5 West Surgical",
            contact=Someone("Maria Lopez", "+12125550101"),
            leader=Someone("Dr James Chen", "+12125550109"),
            leader_title="Chief Nursing Officer",
            members=(
                Someone("Tom Becker", "+12125550102"),
                Someone("Aisha Khan", "+12125550103"),
                Someone("Sam Ortiz", "+12125550104"),
            ),
            matrix=(5, 4, 4, 5, 4),
            shares=True,
            before=(0.52, 0.38),
            after=(0.92, 0.78),
            improves_from=2,
            habits={1: "words", 4: "late", 8: "correct"},
            cycles=(
                Cycle(
                    plan_day=0,
                    plan_at=time(15, 10),
                    change="1",
                    prediction="At least 8 of 10 doses will have a POSS score before the dose",
                    who_where_when="Day-shift nurses on 5 West, tomorrow, every opioid dose",
                    measure="Tick sheet on the med cart: POSS before the dose yes/no",
                    do="Day shift scored POSS before 9 of 11 doses. The card on the cart helped; "
                    "nights were not briefed.",
                    study="Better than predicted on days. Nights missed out because we only "
                    "briefed the day huddle.",
                    act="adapt",
                ),
                Cycle(
                    plan_day=2,
                    plan_at=time(0, 0),
                    change="same",
                    prediction="Night shift will reach 8 of 10 as well",
                    who_where_when="Night nurses, thursday, briefed at the 19:00 huddle",
                    measure="The same tick sheet, kept on nights too",
                    do="Nights scored POSS before 8 of 9 doses; two patients were woken for it.",
                    study="As predicted. Waking patients was accepted once we explained why.",
                    act="adopt",
                    story="A POSS card on every cart and a tick sheet took us from about half "
                    "to 9 in 10 doses scored before they are given.",
                ),
            ),
            notes=(
                Note(
                    1,
                    time(10, 15),
                    "Aisha Khan",
                    "Night shift says the POSS cards ran out on the second cart - can we get "
                    "more printed?",
                ),
            ),
            chart_day=9,
            rating=(4.0, "Reliable POSS scoring on days and nights; a clear shift."),
            coach_replies=(
                "Good catch. I have asked pharmacy to print 20 more; the PDF is on the "
                "intranet page too.",
            ),
        ),
        TeamCast(
            key="stepdown",
            organisation="Harbor Medical Center",
            unit="Cardiac Step-Down",
            contact=Someone("Linda Park", "+16175550201"),
            leader=Someone("Robert Miles", "+16175550209"),
            leader_title="VP Patient Care",
            members=(
                Someone("Kevin Walsh", "+16175550202"),
                Someone("Grace Liu", "+16175550203"),
                Someone("Omar Haddad", "+16175550204"),
            ),
            matrix=(4, 3, 4, 4, 3),
            shares=False,
            before=(0.6, 0.45),
            after=(0.86, 0.7),
            improves_from=4,
            habits={2: "over", 6: "late", 10: "late", 8: "correct"},
            cycles=(
                Cycle(
                    plan_day=2,
                    plan_at=time(15, 30),
                    change="2",
                    prediction="Most IV doses will get a recheck within 30 minutes",
                    who_where_when="Kevin and Omar, tomorrow, the first ten IV doses",
                    measure="Time of the recheck written on the MAR",
                    do="8 of 10 IV doses were rechecked; a phone timer did the reminding.",
                    study="Close to our prediction. Oral doses are the gap now.",
                    act="adopt",
                ),
            ),
            notes=(
                Note(
                    7,
                    time(11, 0),
                    "contact",
                    "Pharmacy wants to join our huddle on Wednesday - is that OK for the session?",
                ),
            ),
            stop=("Grace Liu", 4, time(13, 5)),
            help_day=0,
            rating=(3.5, "Rechecks at peak effect now routine for IV doses."),
            coach_replies=(
                "Yes, please bring them: session 5 is about spreading the change, pharmacy "
                "will help.",
            ),
        ),
    ),
)

SEPSIS = CohortCast(
    key="sepsis",
    topic="sepsis",
    timezone="Europe/London",
    name="Sepsis – UK, November",
    coach=Someone("Priya Raman", ""),
    coach_email="priya.raman@demo.invalid",
    teams=(
        TeamCast(
            key="amu",
            organisation="St Brigid's Hospital",
            unit="Acute Medical Unit",
            contact=Someone("Fiona Walsh", "+447700900101"),
            leader=Someone("Dr Helen Moore", "+447700900109"),
            leader_title="Medical Director",
            members=(
                Someone("Callum Reid", "+447700900102"),
                Someone("Niamh Doyle", "+447700900103"),
            ),
            matrix=(5, 3, 3, 5, 5),
            shares=False,
            before=(0.42, 0.7, 0.74),
            after=(0.78, 0.9, 0.93),
            improves_from=7,
            habits={4: "missed", 5: "missed", 6: "late", 9: "words"},
            cycles=(
                Cycle(
                    plan_day=2,
                    plan_at=time(16, 0),
                    change="2",
                    prediction="Antibiotics within the hour for 3 of 4 positive screens",
                    who_where_when="Callum with the sepsis trolley in bay B, tomorrow",
                    measure="Screen time and first-dose time on the sepsis sheet",
                    do="Only two positive screens; both got antibiotics in 50 minutes. The "
                    "trolley was missing gloves.",
                    study="Too few patients to judge, but the trolley saved the walk to pharmacy.",
                    act="adopt",
                    story="A stocked sepsis trolley in each bay got antibiotics to screened "
                    "patients within the hour.",
                ),
            ),
            notes=(
                Note(
                    7,
                    time(8, 5),
                    "leader",
                    "Sorry - two nurses off sick this week. I will make sure the counts come "
                    "in from today.",
                ),
            ),
            rating=(3.0, "Data gaps mid-way; the hour-1 trolley is working."),
            coach_replies=(
                "Thank you, Helen. Short-staffed weeks happen: even one count a day keeps "
                "the chart alive.",
            ),
        ),
    ),
)

DELIRIUM = CohortCast(
    key="delirium",
    topic="delirium",
    timezone="Pacific/Auckland",
    name="Delirium – Aotearoa, November",
    coach=Someone("Hemi Walker", ""),
    coach_email="hemi.walker@demo.invalid",
    teams=(
        TeamCast(
            key="ward7",
            organisation="Harbourview Hospital",
            unit="Ward 7 Older Adults",
            contact=Someone("Sarah Ngata", "+6421555701"),
            leader=Someone("Dr Paul Fraser", "+6421555709"),
            leader_title="Clinical Director",
            members=(
                Someone("Liam Patel", "+6421555702"),
                Someone("Chloe Evans", "+6421555703"),
            ),
            matrix=(4, 4, 5, 3, 5),
            shares=True,
            before=(0.4, 0.5),
            after=(0.88, 0.74),
            improves_from=7,
            habits={3: "late", 10: "over"},
            cycles=(
                Cycle(
                    plan_day=0,
                    plan_at=time(16, 0),
                    change="1",
                    prediction="Every patient on the morning list will have a CAM screen",
                    who_where_when="Liam on the morning shift, tomorrow, beds 1-10",
                    measure="CAM done yes/no on the handover sheet",
                    do="Only 4 of 10 screened: the morning medication round took priority.",
                    study="Far below what we predicted. Mornings are the wrong time.",
                    act="abandon",
                ),
                Cycle(
                    plan_day=4,
                    plan_at=time(15, 0),
                    change="2",
                    prediction="CAM at the 14:00 orientation round will reach 8 of 10 patients",
                    who_where_when="Chloe and Liam, monday, at the afternoon orientation round",
                    measure="CAM done yes/no on the handover sheet",
                    do="9 of 10 screened during the orientation round; it took 3 minutes each.",
                    study="Better than predicted: the round already brings us to every bed.",
                    act="adopt",
                    story="Screening for delirium during the afternoon orientation round "
                    "reached 9 in 10 patients.",
                ),
            ),
            notes=(
                Note(
                    3,
                    time(19, 40),
                    "Chloe Evans",
                    "Bed 4, Mrs Hale, screened CAM positive tonight - we started the "
                    "orientation bundle.",
                ),
            ),
            chart_day=8,
            rating=(3.5, "Second test worked: screening moved to the orientation round."),
            coach_replies=(
                "Well done for acting on the screen. Please leave names out of messages; "
                "bed numbers are enough.",
            ),
        ),
    ),
)

COHORTS: tuple[CohortCast, ...] = (OPIOID, SEPSIS, DELIRIUM)
