"""Object storage behind one small interface (MinIO and local disk).

Empty until the storage issue: nothing here is used yet.
"""
