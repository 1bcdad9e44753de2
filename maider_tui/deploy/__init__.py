"""What goes on the VM: the cloud-init user-data and the docker-compose file, plus the dry-run `plan`.

`cloud_init` and `compose` are pure renderers (text in, text out, no I/O); uploading and running
them is the ops layer's work.
"""
