"""The evaluation toolkit: does a cloak hold, survive countermeasures, and stop a mimic? (docs/metrics.md)"""
