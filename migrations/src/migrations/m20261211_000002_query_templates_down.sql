-- Undoes m20261211_000002_query_templates.sql.
ALTER TABLE workflows DROP COLUMN template_id;
DROP INDEX query_templates_tags_idx;
DROP INDEX query_templates_category_idx;
DROP INDEX query_templates_list_idx;
ALTER TABLE query_templates DROP COLUMN tags, DROP COLUMN category;
