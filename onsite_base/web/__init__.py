"""What the two web services (reviewer `onsite-review`, admin `onsite-admin`) share:
language negotiation and common strings (`i18n`), the Hub-OAuth handler base and
the managed-service entry point (`service`)."""
