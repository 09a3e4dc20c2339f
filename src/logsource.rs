//! Log sources: following files across rotation, positions, polling and inotify.
