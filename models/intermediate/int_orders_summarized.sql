with

orders as (

    select * from {{ ref('stg_crm__orders') }}

),

summarized as (

    select
        profile_id,
        count(*) as order_count,
        sum(amount) as lifetime_value,
        min(ordered_at) as first_ordered_at,
        max(ordered_at) as last_ordered_at

    from orders
    group by profile_id

)

select * from summarized
