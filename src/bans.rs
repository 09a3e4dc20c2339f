//! Failure counting within findtime, ban decisions, ban times and their increase.
