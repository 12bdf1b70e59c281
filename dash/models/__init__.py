"""The data model. Constraints live in the database, not only here."""

from dash.models.agenda import AgendaItem, AgendaState
from dash.models.base import Base
from dash.models.cohorts import Cohort, Measure, cohort_coaches
from dash.models.data import MeasureValue
from dash.models.messaging import (
    Channel,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxState,
    PendingQuestion,
    Priority,
)
from dash.models.pdsa import PdsaCycle, PdsaState
from dash.models.people import Address, Organisation, Person, Unit
from dash.models.system import FeedbackSnippet, InstanceValue, LoginThrottle, UsedLink
from dash.models.teams import (
    MATRIX_CRITERIA,
    Aim,
    AssessmentRating,
    ConsentChange,
    Membership,
    PriorityMatrix,
    Role,
    SignOff,
    Team,
    TeamState,
)

__all__ = [
    "MATRIX_CRITERIA",
    "Address",
    "AgendaItem",
    "AgendaState",
    "Aim",
    "AssessmentRating",
    "Base",
    "Channel",
    "Cohort",
    "ConsentChange",
    "FeedbackSnippet",
    "InstanceValue",
    "LoginThrottle",
    "Measure",
    "MeasureValue",
    "Membership",
    "Message",
    "MessageStatus",
    "Organisation",
    "OutboxItem",
    "OutboxState",
    "PdsaCycle",
    "PdsaState",
    "PendingQuestion",
    "Person",
    "Priority",
    "PriorityMatrix",
    "Role",
    "SignOff",
    "Team",
    "TeamState",
    "UsedLink",
    "Unit",
    "cohort_coaches",
]
