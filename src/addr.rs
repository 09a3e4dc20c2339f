//! Addresses and failure ids: parsing, normalisation, subnets (fail2ban's IPAddr).
