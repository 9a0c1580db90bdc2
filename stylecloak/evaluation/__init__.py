"""The evaluation toolkit: does a cloak hold, survive countermeasures, and stop a mimic? (DESIGN.md section 5)"""
