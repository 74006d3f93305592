"""Command-line front end of contrastive-dynamics (`cdyn`)."""
