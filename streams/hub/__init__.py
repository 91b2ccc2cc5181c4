"""One CCC hub process: leases, the work loop over the units it holds, the service and its entry
point."""
