"""Operations tools for support leads: service notices, analytics and reports."""
