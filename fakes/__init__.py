"""Local stand-ins for outside parties that have a public protocol (WeChat, WeChat Pay).

They speak the real wire protocol — the same paths, parameters, response shapes and error codes —
so our real clients (wechatpy) are exercised unchanged in tests and in the demo. They are the
only HTTP routes outside ``api/``, because they impersonate someone else's servers.
"""
