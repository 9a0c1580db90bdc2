"""The JSON shapes of the web API, typed so that `/openapi.json` documents them (states as enums)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

# The states a job or an image passes through; the last three are final.
State = Literal["queued", "running", "done", "failed", "cancelled"]


class ItemOut(BaseModel):
    """One uploaded image of a job."""

    index: int = Field(description="position in the job, from 0; used in the image URLs")
    name: str = Field(description="the file name the browser sent (only shown, never used on disk)")
    width: int
    height: int
    state: State
    progress: float = Field(ge=0, le=1, description="0 to 1; moves at least once per optimisation step")
    error: str | None = Field(description="one line, when the state is failed")
    report: dict[str, Any] | None = Field(
        description="when done: the cloak's report (lpips, ssim, ssim_window_min, psnr, max_change, "
        "target_progress, target_progress_half, decoded_progress_half, progress_at_aim, budget, target, encoder, seconds, steps, seed, intensity, quality, ...)"
    )


class JobOut(BaseModel):
    """A cloaking job: its settings, its state and its images."""

    id: str
    state: State
    settings: dict[str, Any] = Field(description="intensity, quality and target as asked")
    target: str | None = Field(description="the target style in use (auto's choice once it is made)")
    error: str | None
    note: str | None = Field(description="e.g. that the job was paused when the server stopped")
    cancel_requested: bool
    progress: float = Field(ge=0, le=1, description="the mean of the images' progress")
    created: float = Field(description="Unix time")
    updated: float = Field(description="Unix time")
    items: list[ItemOut]


class JobCreated(BaseModel):
    job: JobOut
    rejected: list[dict[str, str]] = Field(description="uploads that were refused, each with its reason")
