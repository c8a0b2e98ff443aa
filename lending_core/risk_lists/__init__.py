"""Black and grey lists (M15), in three levels: blacklist-prohibit (禁止级: automatic rejection),
blacklist-restrict (限制级: no automatic approval; manual review, limit capped by the product) and
greylist (灰名单: the decision proceeds, flagged and watched).

An entry names a person only by keyed hashes (ID number, phone, WeChat unionid) in the same hash
domains as ``customers``, so screening a customer needs no clear value. Entries belong to one
member bank or, when the association adds them, to all. Entries come from staff and from system
jobs; lifting one is a maker-checker change. ``screen`` is what the decision engine calls.
"""
