"""Marketing: invite codes and QR images, referral attribution, campaigns (QR-share, referral,
phone-credit, red packets), payouts and staff quotas. It listens to lending events and reads
lending data; it never decides credit.

- ``codes``: the invite-code alphabet and deep links (pure).
- ``qr``: QR PNG/SVG and the share poster (pure rendering, Pillow and ``qrcode``).
- ``service``: invite codes, scans (touches) and binding a referee to an inviter.
- ``funnel``: a referral's stages (registered → applied → approved → disbursed), advanced by the
  lending events that reach us through the outbox.
- ``rollups``: counts per stage for a staff member, a branch and a bank.
- ``performance``: reporting periods and incentive arithmetic (pure).
- ``quotas``: quotas per staff member and branch, and the leaderboard (one SQL query).
- ``incentives``: staff incentives under a campaign's rule.
- ``secondary``: declined applicants followed up and re-invited (二次营销).
- ``abuse``: the suspicious-cluster report (devices, networks, rings, bursts).
- ``analytics``: per campaign, channel, branch and staff member, as JSON and CSV.

Devices and networks are kept only as keyed hashes (``infra.pii.lookup_hash``): enough to tell
"the same phone" or "the same network" apart, never enough to recover an address.
"""
