"""Fakes of third-party services written from their own documentation, not from mmtrans's
code, so a test against them checks mmtrans against the service, not against itself."""
