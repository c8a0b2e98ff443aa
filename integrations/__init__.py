"""Implementations of the outside parties ``lending_core`` defines as Protocols (credit bureau,
tax, courts, core banking, SMS, notary…) and of marketing's payment and top-up providers: a
realistic sandbox and, where the party has a public protocol, a real client. The composition
root picks one per party from the settings."""
