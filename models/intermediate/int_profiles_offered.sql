{#- The best offer each profile is eligible for: highest priority among offers of its tier or below. -#}
with

profiles as (

    select * from {{ ref('stg_crm__profiles') }}

),

offers as (

    select * from {{ ref('stg_catalog__offers') }}

),

eligible as (

    select
        profiles.profile_id,
        offers.offer_code,
        offers.offer_name,
        offers.offer_description,
        offers.discount_percent,
        row_number() over (
            partition by profiles.profile_id
            order by offers.priority desc, offers.offer_id asc
        ) as offer_rank

    from profiles
    inner join offers
        on offers.eligible_tier_rank <= {{ tier_rank('profiles.loyalty_tier') }}

),

best_offer as (

    select
        profile_id,
        offer_code,
        offer_name,
        offer_description,
        discount_percent

    from eligible
    where offer_rank = 1

)

select * from best_offer
