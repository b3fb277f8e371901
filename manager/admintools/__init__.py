"""What the admin panel shows: the permission matrix, the effective configuration, data usage
and the health of the installation (each a plain function of its collaborators)."""
