"""The grab desk's per-worker memory stays bounded: campaign terms it remembers for a second are
forgotten once stale, however many distinct campaign ids grabs name (issue 10.6, the soak)."""

from __future__ import annotations

import pytest

from marketing import red_packets
from marketing.errors import CampaignNotFound


@pytest.fixture
def no_such_campaigns(monkeypatch):
    reads = []

    async def read_terms(campaign_id: int):
        reads.append(campaign_id)
        raise CampaignNotFound()

    monkeypatch.setattr(red_packets, "_read_terms", read_terms)
    return reads


async def test_grabs_at_ever_new_campaign_ids_do_not_grow_the_remembered_terms(no_such_campaigns):
    desk = red_packets.GrabDesk(redis=None, key_prefix="t:", terms_ttl_seconds=0.0)  # every entry stale at once
    for campaign_id in range(1, 501):
        with pytest.raises(CampaignNotFound):
            await desk.terms(campaign_id)
    assert len(no_such_campaigns) == 500
    assert len(desk._terms) == 1  # only the last one, itself stale


async def test_terms_still_fresh_are_kept_and_not_read_again(no_such_campaigns):
    desk = red_packets.GrabDesk(redis=None, key_prefix="t:", terms_ttl_seconds=60.0)
    for _ in range(3):
        for campaign_id in (1, 2):
            with pytest.raises(CampaignNotFound):
                await desk.terms(campaign_id)
    assert no_such_campaigns == [1, 2]  # the refusals are remembered for the second, as before
    assert sorted(desk._terms) == [1, 2]
