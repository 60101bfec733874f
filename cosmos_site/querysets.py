from django.db import models


class OwnedQuerySet(models.QuerySet):
    """Rows that belong to a user through an ``owner`` field."""

    def for_user(self, user):
        """Staff see every row; everyone else sees their own."""
        if user.is_staff:
            return self
        return self.filter(owner=user)
