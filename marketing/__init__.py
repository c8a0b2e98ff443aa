"""Marketing: invite codes and QR images, referral attribution, campaigns (QR-share, referral,
phone-credit, red packets), payouts and staff quotas. It listens to lending events and reads
lending data; it never decides credit. (Built in the Marketing issue.)"""
