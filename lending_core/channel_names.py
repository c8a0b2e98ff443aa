"""The doors customers come in by. Products name the channels they are offered on; applications
and sessions record the one they came through."""

WECHAT_MINIPROGRAM = "wechat_miniprogram"
MOBILE_BANK = "mobile_bank"
ENTERPRISE_BANK = "enterprise_bank"
DIRECT_BANK = "direct_bank"
GOV_PLATFORM = "gov_platform"

CUSTOMER_CHANNELS = (WECHAT_MINIPROGRAM, MOBILE_BANK, ENTERPRISE_BANK, DIRECT_BANK, GOV_PLATFORM)
# The member banks' own apps, which call us server to server with a signed identity assertion.
BANK_APP_CHANNELS = (MOBILE_BANK, ENTERPRISE_BANK, DIRECT_BANK)
