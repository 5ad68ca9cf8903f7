"""The dry run: the real program under Pulumi mocks, written out as files a person can read."""
