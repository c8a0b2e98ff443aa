"""Contracts: credit and loan contracts, their signing and the evidence that proves it."""
