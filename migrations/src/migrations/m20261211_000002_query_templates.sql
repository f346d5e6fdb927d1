-- The query template library: categories, tags, and the template a workflow was made
-- from. Templates of no user (user_id NULL) are the system's own (public).
ALTER TABLE query_templates
    ADD COLUMN category text,
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX query_templates_list_idx ON query_templates (created_at DESC, id DESC);
CREATE INDEX query_templates_category_idx ON query_templates (category);
CREATE INDEX query_templates_tags_idx ON query_templates USING gin (tags);
ALTER TABLE workflows ADD COLUMN template_id uuid REFERENCES query_templates (id) ON DELETE SET NULL;
