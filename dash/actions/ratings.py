"""Faculty ratings of a team's progress on the IHI assessment scale (QI-REFERENCE.md)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dash.errors import UserError
from dash.models import AssessmentRating, Person, Team

#: The IHI assessment scale, 0.5 to 5.0 in half points (QI-REFERENCE.md, "IHI assessment scale").
SCALE: dict[float, str] = {
    0.5: "Intent to participate",
    1.0: "Charter and team established",
    1.5: "Planning begun",
    2.0: "Activity, no changes",
    2.5: "Changes tested, no improvement",
    3.0: "Modest improvement",
    3.5: "Improvement",
    4.0: "Significant improvement",
    4.5: "Sustainable improvement",
    5.0: "Outstanding sustainable results",
}


def rate_team(
    session: Session, *, team: Team, score: float, coach: Person, comment: str = ""
) -> AssessmentRating:
    """Record `coach`'s rating of `team`; earlier ratings stay as the history.

    Stored as half points so 0.5 steps are exact in every database.
    """
    half_points = round(score * 2)
    if abs(half_points - score * 2) > 1e-9 or not 1 <= half_points <= 10:
        raise UserError(f"{score} is not on the assessment scale: use 0.5 to 5.0 in steps of 0.5")
    rating = AssessmentRating(
        team_id=team.id,
        half_points=half_points,
        comment=comment.strip(),
        rated_by_id=coach.id,
    )
    session.add(rating)
    session.flush()
    return rating
