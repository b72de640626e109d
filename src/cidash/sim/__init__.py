"""`cidash sim`: a Gerrit on loopback (SSH stream-events + REST) faithful to the wire, for demo, tests, benchmarks."""
