"""Wire and presentation formats, pure: answer envelopes and pages, the Prometheus text, EMF
documents, what a posted record must be, bounded parsing of untrusted input, a schedule in words."""
