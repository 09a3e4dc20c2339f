//! Date detection: fail2ban's templates, custom patterns and time conversion.
